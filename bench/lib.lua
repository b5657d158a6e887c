--- bench/lib.lua: the benchmark harness shared by every workload group.
--
-- A workload group is a file bench/<group>.lua returning
-- `function(h) ... end`; bench/bench.lua runs every group with one harness
-- `h` (this module).  Every figure is measured against a peer (SQLite
-- through LuaDBI) in the same run, and printed as a ratio, so results from
-- different machines can be compared.
--
-- Harness functions:
--   h.now()                      wall-clock seconds (nanosecond resolution)
--   h.tmpdir(name)               a fresh directory, removed by h.cleanup()
--   h.sqlite(path)               a LuaDBI SQLite3 connection in WAL mode
--   h.compare(name, unit, n, ours, theirs, target, opts)
--                                time ours() and theirs() (each does n units
--                                of work), print both rates and the ratio
--                                dynafile/SQLite; target: the ratio wanted;
--                                opts.rounds: best of that many runs
--   h.record(name, ratio, target) add a comparison measured elsewhere (in
--                                other processes) to the summary
--   h.bytes_written()            bytes this process has written so far
--   h.summary()                  print every comparison and the targets
local M = {}

local io_popen, os_execute, os_tmpname, os_remove = io.popen, os.execute, os.tmpname, os.remove
local string_format = string.format

--- Wall-clock time in seconds.  Lua has no portable wall clock finer than
-- a second, so date(1) is asked once at each end of a measurement (its
-- cost, about a millisecond, is negligible against runs of a second).
function M.now()
  local f = assert(io_popen("date +%s.%N"))
  local s = f:read("*l")
  f:close()
  return assert(tonumber(s), "date +%s.%N gave no number")
end

local dirs = {}

--- A fresh empty directory.
function M.tmpdir(name)
  local base = os_tmpname()
  os_remove(base)
  local dir = base .. "-" .. name
  assert(os_execute("mkdir -p '" .. dir .. "'"))
  dirs[#dirs + 1] = dir
  return dir
end

function M.cleanup()
  for _, d in ipairs(dirs) do os_execute("rm -rf '" .. d .. "'") end
  dirs = {}
end

--- A SQLite connection (LuaDBI) in WAL mode, with autocommit on; wrap
-- writes in explicit BEGIN/COMMIT.
function M.sqlite(path)
  local DBI = require "DBI"
  local dbh = assert(DBI.Connect("SQLite3", path))
  dbh:autocommit(true)
  local function exec(sql)
    local sth = assert(dbh:prepare(sql))
    assert(sth:execute())
    sth:close()
  end
  exec("PRAGMA journal_mode=WAL")
  exec("PRAGMA synchronous=FULL")
  return dbh, exec
end

local results = {}

local function rate(n, secs)
  if secs <= 0 then return math.huge end
  return n / secs
end

local function fmt_rate(r)
  if r >= 1e6 then return string_format("%8.2f M", r / 1e6) end
  if r >= 1e3 then return string_format("%8.1f k", r / 1e3) end
  return string_format("%8.1f  ", r)
end

--- Time a function: seconds of wall clock and of CPU.
function M.time(fn)
  collectgarbage("collect")
  local c0, t0 = os.clock(), M.now()
  fn()
  local t1, c1 = M.now(), os.clock()
  return t1 - t0, c1 - c0
end

--- Bytes this process has handed to write(2) and friends so far (Linux
-- /proc/self/io `wchar`), or nil elsewhere.
function M.bytes_written()
  local f = io.open("/proc/self/io")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return tonumber(s:match("wchar:%s*(%d+)"))
end

--- Run and compare one workload.  `ours` and `theirs` each perform n units
-- (items loaded, gets, queries, items scanned) and may return a check value
-- (for example the number of items found), which must be equal for both.
-- opts.rounds (default 1): run both that many times, alternating, and keep
-- each side's best time -- the machine may be busy with other work, and
-- the best of a few runs is the least disturbed one.  Workloads that change
-- the data (loading) run once.  opts.cpu: time by the process's CPU time
-- (user + system, os.clock) instead of the wall clock -- right for work
-- that never waits for the disk (reads of cached data, both stores in this
-- one process), and far less disturbed by other work on the machine; work
-- that waits for fsync (loading) must be timed by the wall clock.
-- opts.setup: called (untimed) before each round, e.g. to make fresh
-- stores for a load.
function M.compare(name, unit, n, ours, theirs, target, opts)
  local rounds = opts and opts.rounds or 1
  local use_cpu = opts and opts.cpu
  local ta, tb, wa, wb = math.huge, math.huge, 0, 0
  for _ = 1, rounds do
    local check_a, check_b
    if opts and opts.setup then opts.setup() end
    local w0 = M.bytes_written()
    local t, c = M.time(function() check_a = ours() end)
    if use_cpu then t = c end
    local w1 = M.bytes_written()
    if t < ta then ta = t end
    t, c = M.time(function() check_b = theirs() end)
    if use_cpu then t = c end
    local w2 = M.bytes_written()
    if t < tb then tb = t end
    if w0 then wa, wb = w1 - w0, w2 - w1 end
    if check_a ~= check_b then
      error(string_format("%s: dynafile and SQLite disagree (%s vs %s)", name,
        tostring(check_a), tostring(check_b)))
    end
  end
  local ra, rb = rate(n, ta), rate(n, tb)
  local ratio = ra / rb
  local r = { name = name, unit = unit, n = n, ours = ra, theirs = rb,
              ratio = ratio, target = target, secs_ours = ta, secs_theirs = tb }
  results[#results + 1] = r
  print(string_format("%-32s dynafile %s%s/s %6.3f s   SQLite %s%s/s %6.3f s %s  ratio %6.2fx%s",
    name, fmt_rate(ra), unit, ta, fmt_rate(rb), unit, tb, use_cpu and "cpu " or "wall", ratio,
    target and string_format("  (target %gx: %s)", target,
                             ratio >= target and "met" or "MISSED") or ""))
  if wa > 1e6 or wb > 1e6 then
    print(string_format("%-32s written: dynafile %.1f MB, SQLite %.1f MB", "", wa / 1e6, wb / 1e6))
  end
  io.stdout:flush()
  return r
end

--- Record a comparison measured elsewhere (in other processes, say):
-- `ratio` is dynafile's rate over the peer's.
function M.record(name, ratio, target)
  local r = { name = name, ratio = ratio, target = target }
  results[#results + 1] = r
  return r
end

--- Print every comparison once more, and whether the targets were met.
-- Returns the number of missed targets.
function M.summary()
  local missed = 0
  print("")
  print("summary (ratio = dynafile rate / peer rate, higher is better; the peer is SQLite"
    .. " unless named)")
  for _, r in ipairs(results) do
    local mark = ""
    if r.target then
      if r.ratio >= r.target then
        mark = string_format("target %gx met", r.target)
      else
        mark = string_format("target %gx MISSED", r.target)
        missed = missed + 1
      end
    end
    print(string_format("  %-40s %7.2fx  %s", r.name, r.ratio, mark))
  end
  return missed
end

return M
