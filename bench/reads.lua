--- bench/reads.lua: reads from a process that has just opened the store --
-- full scans with a Lua filter and with a filter the store evaluates,
-- random get_item, a 10-item begins_with query and a whole-partition
-- query -- for dynafile, SQLite (LuaDBI, WAL mode, PRIMARY KEY(pk, sk),
-- the item as JSON text decoded with cjson) and, for the Lua-filter scan,
-- the original Python dynafile (0.1.3, a pickle file per partition, a
-- Python callable as the filter).
--
-- The data set is bench/core.lua's: 100,000 items of about 200 bytes in
-- 1,000 partitions, loaded in transactions of 1,000 (the Python peer: one
-- batch per partition).  Every read phase runs in a fresh process
-- (bench/reads/phase.lua, bench/reads/python_dynafile.py), timed by its CPU
-- time from before the store is opened to the end of the workload, so the
-- figures include what a program pays on its first pass over a store it
-- has just opened.  Each phase runs BENCH_RUNS times (default 3), the
-- stores alternating; the figure is the median, and the ratio the median
-- of the ratios of each run (both stores measured in the same run).  Both
-- stores must agree on every result.
--
-- Also printed: bytes on disk after the load, the peak resident set of
-- each phase (file-backed pages of a memory map count in it) and its
-- anonymous memory at the end (the process's own, without the map).
--
-- The Python peer is looked for in BENCH_PYTHON_DYNAFILE, else in
-- ../shared/anchors/python-dynafile/src (from the repository root); when
-- it is missing, its comparison is skipped and says so.  It needs Debian's
-- python3-sortedcontainers and python3-atomicwrites (`make bench` installs
-- them).
local string_format = string.format

local RUNS = tonumber(os.getenv("BENCH_RUNS")) or 3

local HERE = (arg and arg[0] or "bench/bench.lua"):match("^(.*)/[^/]*$") or "."
local LUA = arg and arg[-1] or "lua5.4"
local PYTHON_SOURCE = os.getenv("BENCH_PYTHON_DYNAFILE")
                      or "../shared/anchors/python-dynafile/src"

local function exists(path)
  local f = io.open(path)
  if f then f:close() end
  return f ~= nil
end

local function python()
  if exists("/usr/bin/python3") then return "/usr/bin/python3" end
  return "python3"
end

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Run one phase in a fresh process; its result line parsed.
local function phase(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("*a")
  p:close()
  local units, check, cpu, wall, hwm, anon, file, minflt, majflt =
    out:match("ok (%d+) (%S+) ([%d.]+) ([%d.]+) (%d+) (%d+) (%d+) (%d+) (%d+)")
  if not units then error("phase failed: " .. cmd .. "\n" .. out, 0) end
  return { units = tonumber(units), check = tonumber(check), cpu = tonumber(cpu),
           wall = tonumber(wall), hwm = tonumber(hwm), anon = tonumber(anon),
           file = tonumber(file), minflt = tonumber(minflt), majflt = tonumber(majflt) }
end

local function lua_phase(store, workload, dir)
  return phase(string_format("%s %s %s %s %s", LUA, shell_quote(HERE .. "/reads/phase.lua"),
    store, workload, shell_quote(dir)))
end

local function python_phase(workload, dir)
  return phase(string_format("%s %s %s %s %s", python(),
    shell_quote(HERE .. "/reads/python_dynafile.py"), shell_quote(PYTHON_SOURCE), workload,
    shell_quote(dir)))
end

local function median(list)
  local t = {}
  for i, v in ipairs(list) do t[i] = v end
  table.sort(t)
  local n = #t
  if n % 2 == 1 then return t[(n + 1) / 2] end
  return (t[n / 2] + t[n / 2 + 1]) / 2
end

local function dir_bytes(dir)
  local p = assert(io.popen("du -sb " .. shell_quote(dir)))
  local n = tonumber((p:read("*l") or ""):match("^(%d+)"))
  p:close()
  return n or 0
end

local function fmt_rate(r)
  if r >= 1e6 then return string_format("%7.2f M", r / 1e6) end
  if r >= 1e3 then return string_format("%7.1f k", r / 1e3) end
  return string_format("%7.1f  ", r)
end

-- Drop a store's files from the page cache (GNU dd's nocache flag asks
-- the kernel to forget the file's clean pages), so the next phase reads
-- them from the disk: a store opened after a reboot, or one larger than
-- the memory.  Returns false when that cannot be done here.
local function evict(dir)
  local p = assert(io.popen("ls " .. shell_quote(dir)))
  local ok = true
  for name in p:lines() do
    local f = dir .. "/" .. name
    ok = os.execute("dd if=" .. shell_quote(f) .. " iflag=nocache count=0 status=none")
      and ok
  end
  p:close()
  return ok
end

-- target: the ratio wanted against SQLite; python: against the Python
-- dynafile; cold: the store's files are dropped from the page cache
-- before each phase, and the phase is timed by the wall clock (it waits
-- for the disk).
local WORKLOADS = {
  { id = "scan_lua", name = "scan, Lua filter", unit = "items", target = 4, python = 1.5 },
  { id = "scan_string", name = "scan, filter in the store", unit = "items", target = 4 },
  { id = "get", name = "random get_item", unit = "gets", target = 6 },
  { id = "query_prefix", name = "begins_with query, 10 items", unit = "queries", target = 5 },
  { id = "query_part", name = "query a whole partition (100)", unit = "queries", target = 4 },
  { id = "scan_lua", name = "scan, Lua filter, from the disk", unit = "items", cold = true },
}

return function(h)
  local with_python = exists(PYTHON_SOURCE .. "/dynafile/__init__.py")
  print(string_format("reads: the core data set, every read phase a fresh process, "
    .. "median of %d runs, CPU time", RUNS))
  local dirs = { dynafile = h.tmpdir("reads-dynafile"), sqlite = h.tmpdir("reads-sqlite"),
                 python = h.tmpdir("reads-python") }

  -- load (not compared: the core and writes groups measure loading) ------
  local loads = { dynafile = lua_phase("dynafile", "load", dirs.dynafile),
                  sqlite = lua_phase("sqlite", "load", dirs.sqlite) }
  if with_python then
    loads.python = python_phase("load", dirs.python)
  else
    print("  the original Python dynafile was not found at " .. PYTHON_SOURCE
      .. " (set BENCH_PYTHON_DYNAFILE): its comparison is skipped")
  end
  local disk = { dynafile = dir_bytes(dirs.dynafile), sqlite = dir_bytes(dirs.sqlite),
                 python = with_python and dir_bytes(dirs.python) or nil }
  print(string_format("  on disk: dynafile %.1f MB, SQLite %.1f MB (%.2fx)%s",
    disk.dynafile / 1e6, disk.sqlite / 1e6, disk.dynafile / disk.sqlite,
    disk.python and string_format(", Python dynafile %.1f MB", disk.python / 1e6) or ""))
  print(string_format("  peak RSS of the load: dynafile %.1f MB, SQLite %.1f MB",
    loads.dynafile.hwm / 1024, loads.sqlite.hwm / 1024))

  local can_evict = evict(dirs.dynafile) and evict(dirs.sqlite)
  for _, w in ipairs(WORKLOADS) do
    if w.cold and not can_evict then
      print(w.name .. ": skipped (files cannot be dropped from the page cache here)")
    else
      local clock = w.cold and "wall" or "cpu"
      local runs = { dynafile = {}, sqlite = {}, python = {} }
      local function run_one(s, r)
        if w.cold then evict(dirs[s]) end
        if s == "python" then
          runs.python[r] = python_phase(w.id, dirs.python)
        else
          runs[s][r] = lua_phase(s, w.id, dirs[s])
        end
      end
      for r = 1, RUNS do
        -- alternate which store runs first
        local a, b = "dynafile", "sqlite"
        if r % 2 == 0 then a, b = b, a end
        run_one(a, r)
        run_one(b, r)
        if w.python and with_python then run_one("python", r) end
        for _, s in ipairs({ "sqlite", "python" }) do
          local x = runs[s][r]
          if x and x.check ~= runs.dynafile[r].check then
            error(string_format("%s: dynafile and %s disagree (%s vs %s)", w.name, s,
              tostring(runs.dynafile[r].check), tostring(x.check)), 0)
          end
        end
      end
      local function summary(s)
        local list = runs[s]
        if #list == 0 then return nil end
        local t, ratio, hwm, majflt, anon = {}, {}, {}, {}, {}
        for r, x in ipairs(list) do
          t[r] = x[clock]
          ratio[r] = x[clock] / runs.dynafile[r][clock]
          hwm[r] = x.hwm
          majflt[r] = x.majflt
          anon[r] = x.anon
        end
        local m = median(t)
        return { rate = list[1].units / m, secs = m, ratio = median(ratio), ratios = ratio,
                 hwm = median(hwm), majflt = median(majflt), anon = median(anon) }
      end
      local ours = summary("dynafile")
      for _, s in ipairs({ "sqlite", "python" }) do
        local theirs = summary(s)
        if theirs then
          local peer = s == "sqlite" and "SQLite" or "Python dynafile"
          local target = s == "sqlite" and w.target or w.python
          local ratios = {}
          for r, x in ipairs(theirs.ratios) do ratios[r] = string_format("%.2f", x) end
          local name = w.name .. (s == "python" and " vs Python" or "")
          print(string_format("%-36s dynafile %s%s/s %6.3f s   %s %s%s/s %6.3f s %s  "
            .. "ratio %5.2fx (runs %s)%s", name, fmt_rate(ours.rate), w.unit, ours.secs, peer,
            fmt_rate(theirs.rate), w.unit, theirs.secs, clock, theirs.ratio,
            table.concat(ratios, " "),
            target and string_format("  (target %gx: %s)", target,
              theirs.ratio >= target and "met" or "MISSED") or ""))
          -- the peak resident set counts the pages of dynafile's memory
          -- map it touched (the page cache, shared and dropped first under
          -- memory pressure); the anonymous part is the process's own
          print(string_format("%-36s peak RSS: dynafile %.1f MB, %s %.1f MB; anonymous "
            .. "memory at the end: dynafile %.1f MB, %s %.1f MB%s", "",
            ours.hwm / 1024, peer, theirs.hwm / 1024, ours.anon / 1024, peer, theirs.anon / 1024,
            w.cold and string_format("; major page faults: dynafile %d, %s %d",
              ours.majflt, peer, theirs.majflt) or ""))
          h.record(name, theirs.ratio, target)
        end
      end
      io.stdout:flush()
    end
  end
end
