--- bench/writes.lua: the write side -- single puts in each sync mode,
-- puts into a table with secondary indexes, bulk loads, updates in
-- transactions -- each against a peer in the same run.
--
-- Peers: SQLite through LuaDBI in WAL mode (PRIMARY KEY(pk, sk), the item
-- as JSON text), with the matching `synchronous` setting; for bulk loads
-- also Tarantool 2.6 (Debian's `tarantool`, memtx, wal_mode = "fsync"),
-- run as its own process (bench/tarantool/load.lua) that prints its
-- figure; bench/tarantool/setup.sh installs it when it is missing.
--
-- Workloads (items of about 200 bytes, as in bench/core.lua):
--   * single put_item, each its own commit, round-robin over 1,000
--     partitions: sync "full" against synchronous=FULL (target 1.2x),
--     "normal" against NORMAL (3x), "off" against OFF (3x);
--   * the CPU time of one "off" put_item (os.clock over 20,000 puts;
--     target at most 10 us);
--   * single put_item with sync "full" into a table with 3 GSIs, against
--     SQLite with the same attributes as columns and 3 secondary indexes
--     (target 2x);
--   * bulk load of N items in transactions of 1,000, sync "full", against
--     Tarantool (target 2x), partitions in order and round-robin;
--   * update_item (add to a number) in transactions of 1,000, against
--     SELECT + decode + change + encode + UPDATE in SQLite;
--   * with strace(1) installed: the flushes per durable commit (fsync,
--     fdatasync, msync, and writes to a descriptor opened O_DSYNC).
-- Each comparison runs 3 times, alternating the stores, into fresh
-- databases; the figure is the median rate of each store.  Before each
-- durable comparison `sync` lets the disk settle.
--
-- Environment: BENCH_ITEMS (bulk load size, default 100000), BENCH_PUTS
-- (durable single puts, default 1000), BENCH_FAST_PUTS (puts with "normal"
-- and "off", default 20000), BENCH_ROUNDS (default 3).
local dynafile = require "dynafile"
local cjson = require "cjson"

local N = tonumber(os.getenv("BENCH_ITEMS")) or 100000
local PUTS = tonumber(os.getenv("BENCH_PUTS")) or 1000
local FAST_PUTS = tonumber(os.getenv("BENCH_FAST_PUTS")) or 20000
local ROUNDS = tonumber(os.getenv("BENCH_ROUNDS")) or 3
local CPU_PUTS = 20000
local BATCH = 1000
local string_format, string_rep = string.format, string.rep
local here = (arg and arg[0] or "bench/bench.lua"):match("^(.*)/[^/]*$") or "bench"
if here:sub(1, 1) ~= "/" then
  local p = io.popen("pwd")
  here = p:read("l") .. "/" .. here
  p:close()
end

local function make_item(i, pk)
  return {
    PK = pk,
    SK = string_format("item#%08d", i),
    name = "name " .. i,
    score = i % 1000,
    tags = { "tag" .. (i % 7), "tag" .. (i % 11) },
    payload = string_rep(string.char(97 + i % 26), 100),
  }
end

local function in_order(i) return "user#" .. math.floor(i / 100) end
local function round_robin(i) return "user#" .. (i % 1000) end

-- The 3-GSI schema of bench/indexes.lua, and SQLite's equivalent.
local GSI3 = {
  by_type = { pk = "type", sk = "created" },
  by_status = { pk = "status" },
  by_owner = { pk = "owner", sk = "score" },
}
local SQL_INDEXES = {
  "CREATE INDEX by_type ON items(type, created)",
  "CREATE INDEX by_status ON items(status)",
  "CREATE INDEX by_owner ON items(owner, score)",
}
local function make_indexed(i)
  return {
    PK = "user#" .. (i % 1000),
    SK = string_format("order#%08d", i),
    type = "type#" .. (i % 200),
    created = i,
    status = (i % 5 == 0) and "open" or "closed",
    owner = "owner#" .. (i % 97),
    score = i % 1000,
    payload = string_rep(string.char(97 + i % 26), 100),
  }
end

local function sqlite_count(sql)
  local sel = assert(sql:prepare("SELECT count(*) FROM items"))
  assert(sel:execute())
  local n = sel:fetch(false)[1]
  sel:close()
  return tonumber(n)
end

local function dynafile_count(db)
  local n = 0
  for _ in db:scan() do n = n + 1 end
  return n
end

-- Let the disk settle: flush what earlier work left dirty, so it does
-- not slow whichever store runs next.
local function settle()
  os.execute("sync; sleep 1")
end

local function median(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  local n = #s
  if n % 2 == 1 then return s[(n + 1) / 2] end
  return (s[n / 2] + s[n / 2 + 1]) / 2
end

local function fmt_rate(r)
  if r >= 1e6 then return string_format("%7.2f M", r / 1e6) end
  if r >= 1e3 then return string_format("%7.1f k", r / 1e3) end
  return string_format("%7.1f  ", r)
end

local recorded = {}

-- Run ours() and theirs() ROUNDS times, alternating; each returns the
-- seconds its n units took (and a check value, equal for both).  Prints
-- the median rates and their ratio, and records it for the summary.
local function compare(h, name, unit, n, peer, ours, theirs, target)
  local ra, rb = {}, {}
  for round = 1, ROUNDS do
    local sa, ca = ours(round)
    local sb, cb = theirs(round)
    if ca ~= cb then
      error(string_format("%s: dynafile and %s disagree (%s vs %s)", name, peer,
                          tostring(ca), tostring(cb)))
    end
    ra[round], rb[round] = n / sa, n / sb
  end
  local a, b = median(ra), median(rb)
  local ratio = a / b
  print(string_format("%-36s dynafile %s%s/s  %s %s%s/s  ratio %6.2fx%s", name, fmt_rate(a),
    unit, peer, fmt_rate(b), unit, ratio,
    target and string_format("  (target %gx: %s)", target, ratio >= target and "met" or "MISSED")
      or ""))
  io.stdout:flush()
  local label = peer == "SQLite" and name or (name .. " / " .. peer)
  if h.record then h.record(label, ratio, target) end
  recorded[#recorded + 1] = { name = label, ratio = ratio, target = target }
  return ratio
end

local function timed(fn)
  collectgarbage("collect")
  local t0 = require("lib").now()
  local check = fn()
  return require("lib").now() - t0, check
end

-- Single puts ---------------------------------------------------------

local function dynafile_puts(dir, n, sync, indexed)
  local db = assert(dynafile.open(dir, { pk = "PK", sk = "SK", sync = sync,
                                         gsi = indexed and GSI3 or nil }))
  local secs = timed(function()
    if indexed then
      for i = 1, n do assert(db:put_item(make_indexed(i))) end
    else
      for i = 1, n do assert(db:put_item(make_item(i, round_robin(i)))) end
    end
  end)
  local count = dynafile_count(db)
  db:close()
  return secs, count
end

local function sqlite_puts(h, path, n, synchronous, indexed)
  local sql, exec = h.sqlite(path)
  exec("PRAGMA synchronous=" .. synchronous)
  local ins
  if indexed then
    exec("CREATE TABLE items (pk TEXT NOT NULL, sk TEXT NOT NULL, type TEXT, created INTEGER, " ..
         "status TEXT, owner TEXT, score INTEGER, item TEXT NOT NULL, PRIMARY KEY (pk, sk))")
    for _, s in ipairs(SQL_INDEXES) do exec(s) end
    ins = assert(sql:prepare("INSERT OR REPLACE INTO items (pk, sk, type, created, status, " ..
                             "owner, score, item) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"))
  else
    exec("CREATE TABLE items (pk TEXT NOT NULL, sk TEXT NOT NULL, item TEXT NOT NULL, " ..
         "PRIMARY KEY (pk, sk))")
    ins = assert(sql:prepare("INSERT OR REPLACE INTO items (pk, sk, item) VALUES (?, ?, ?)"))
  end
  local secs = timed(function()
    for i = 1, n do -- autocommit: each its own transaction
      if indexed then
        local it = make_indexed(i)
        assert(ins:execute(it.PK, it.SK, it.type, it.created, it.status, it.owner, it.score,
                           cjson.encode(it)))
      else
        local it = make_item(i, round_robin(i))
        assert(ins:execute(it.PK, it.SK, cjson.encode(it)))
      end
    end
  end)
  ins:close()
  local count = sqlite_count(sql)
  sql:close()
  return secs, count
end

-- The CPU time of one "off" put_item, over CPU_PUTS puts into a database
-- that already holds some items.
local function cpu_per_off_put(h)
  local db = assert(dynafile.open(h.tmpdir("writes-cpu"), { pk = "PK", sk = "SK", sync = "off" }))
  for i = 1, 2000 do assert(db:put_item(make_item(-i, round_robin(i)))) end
  collectgarbage("collect")
  local c0 = os.clock()
  for i = 1, CPU_PUTS do db:put_item(make_item(i, round_robin(i))) end
  local us = (os.clock() - c0) / CPU_PUTS * 1e6
  db:close()
  return us
end

-- Bulk loads ------------------------------------------------------------

local function dynafile_load(dir, part, n)
  local db = assert(dynafile.open(dir, { pk = "PK", sk = "SK", sync = "full" }))
  local secs = timed(function()
    for b = 0, n - 1, BATCH do
      assert(db:batch_write(function(w)
        for i = b, b + BATCH - 1 do w:put_item(make_item(i, part(i))) end
      end))
    end
  end)
  local count = db:stat().items
  db:close()
  return secs, count
end

-- Tarantool's load in its own process: seconds and the count it read back.
local function tarantool_load(h, pattern, n)
  local dir = h.tmpdir("writes-tarantool")
  local p = assert(io.popen(string_format(
    "cd '%s' && tarantool '%s/tarantool/load.lua' '%s' %d %d %s 2>&1",
    dir, here, dir, n, BATCH, pattern)))
  local out = p:read("a")
  p:close()
  local secs, count = out:match("tarantool_load %d+ ([%d.]+) (%d+)")
  if not secs then error("tarantool load failed: " .. out) end
  os.execute("rm -rf '" .. dir .. "'")
  return tonumber(secs), tonumber(count)
end

local function have_tarantool()
  local p = io.popen("sh '" .. here .. "/tarantool/setup.sh' 2>&1")
  local out = p:read("a")
  local ok = p:close()
  if ok then print("peer: " .. out:gsub("%s+$", "")) else print("no Tarantool: " .. out) end
  return ok
end

-- strace: flushes per durable commit -------------------------------------

-- Run `lua bench/writes.lua child <store> <n> <dir>` under strace and
-- return the flushes per commit: fsync-family calls (fsync, fdatasync,
-- msync), and writes to a descriptor opened with O_DSYNC.
local function traced(store, n)
  local lua = arg and arg[-1] or "lua5.4"
  local script = here .. "/writes.lua"
  local base = os.tmpname()
  os.remove(base)
  local log = base .. ".strace"
  local cmd = string_format("strace -f -qq -o '%s' -e trace=openat,fsync,fdatasync,msync," ..
    "pwrite64,pwritev,write,writev %s '%s' child %s %d '%s' >/dev/null 2>&1", log, lua, script,
    store, n, base .. "-" .. store)
  local ok = os.execute(cmd)
  os.execute("rm -rf '" .. base .. "-" .. store .. "'")
  if not ok then
    os.remove(log)
    return nil
  end
  local dsync_fds, syncs, dsync_writes = {}, 0, 0
  for line in io.lines(log) do
    local fd = line:match("openat%(.-O_[D]?SYNC.-%)%s*=%s*(%d+)")
    if fd then dsync_fds[fd] = true end
    local wfd = line:match("pwrite64%((%d+),") or line:match("pwritev%((%d+),")
      or line:match("writev%((%d+),") or line:match("write%((%d+),")
    if wfd and dsync_fds[wfd] then dsync_writes = dsync_writes + 1 end
    if line:match("fsync%(") or line:match("fdatasync%(") or line:match("msync%(") then
      syncs = syncs + 1
    end
  end
  os.remove(log)
  return syncs / n, dsync_writes / n
end

local function child(store, n, dir)
  os.execute("mkdir -p '" .. dir .. "'")
  if store == "dynafile" then
    dynafile_puts(dir, n, "full")
  else
    sqlite_puts(require "lib", dir .. "/bench.db", n, "FULL")
  end
end

if arg and arg[1] == "child" and (arg[0] or ""):match("writes%.lua$") then
  child(arg[2], tonumber(arg[3]), arg[4])
  os.exit(0)
end

return function(h)
  print(string_format("writes: single puts (%d durable, %d normal/off), bulk loads of %d items " ..
    "in transactions of %d; medians of %d rounds", PUTS, FAST_PUTS, N, BATCH, ROUNDS))

  -- single puts in each mode
  settle()
  compare(h, "put_item, sync=full", "puts", PUTS, "SQLite",
    function() return dynafile_puts(h.tmpdir("writes-full"), PUTS, "full") end,
    function() return sqlite_puts(h, h.tmpdir("writes-full-sql") .. "/b.db", PUTS, "FULL") end,
    1.2)
  settle()
  compare(h, "put_item, sync=normal", "puts", FAST_PUTS, "SQLite",
    function() return dynafile_puts(h.tmpdir("writes-normal"), FAST_PUTS, "normal") end,
    function()
      return sqlite_puts(h, h.tmpdir("writes-normal-sql") .. "/b.db", FAST_PUTS, "NORMAL")
    end, 3)
  settle()
  compare(h, "put_item, sync=off", "puts", FAST_PUTS, "SQLite",
    function() return dynafile_puts(h.tmpdir("writes-off"), FAST_PUTS, "off") end,
    function() return sqlite_puts(h, h.tmpdir("writes-off-sql") .. "/b.db", FAST_PUTS, "OFF") end,
    3)
  local cpu = {}
  for r = 1, ROUNDS do cpu[r] = cpu_per_off_put(h) end
  local us = median(cpu)
  print(string_format("%-36s %.2f us of CPU per put_item (target at most 10 us: %s)",
    "CPU per put_item, sync=off", us, us <= 10 and "met" or "MISSED"))
  if h.record then h.record("CPU per off put_item: 10 us / measured", 10 / us, 1) end
  recorded[#recorded + 1] = { name = "CPU per off put_item (10 us / us)", ratio = 10 / us,
                              target = 1 }

  -- single durable puts with 3 GSIs
  settle()
  compare(h, "put_item with 3 GSIs, sync=full", "puts", PUTS, "SQLite",
    function() return dynafile_puts(h.tmpdir("writes-gsi"), PUTS, "full", true) end,
    function()
      return sqlite_puts(h, h.tmpdir("writes-gsi-sql") .. "/b.db", PUTS, "FULL", true)
    end, 2)

  -- bulk loads against Tarantool
  if have_tarantool() then
    for _, p in ipairs { { "in_order", in_order, "partitions in order" },
                         { "round_robin", round_robin, "1,000 partitions r-r" } } do
      settle()
      compare(h, "bulk load, sync=full, " .. p[3], "items", N, "Tarantool",
        function() return dynafile_load(h.tmpdir("writes-load"), p[2], N) end,
        function() return tarantool_load(h, p[1], N) end, 2)
    end
  else
    if h.record then h.record("bulk load / Tarantool (not installed)", 0, 2) end
  end

  -- update_item in transactions of 1,000, against SQLite
  settle()
  local UPD = math.min(N, 20000)
  compare(h, "update_item add, txns of 1,000", "updates", UPD, "SQLite",
    function()
      local db = assert(dynafile.open(h.tmpdir("writes-upd"), { pk = "PK", sk = "SK" }))
      for b = 0, UPD - 1, BATCH do
        assert(db:batch_write(function(w)
          for i = b, b + BATCH - 1 do w:put_item(make_item(i, round_robin(i))) end
        end))
      end
      local secs = timed(function()
        for b = 0, UPD - 1, BATCH do
          assert(db:transaction(function(tx)
            for i = b, b + BATCH - 1 do
              tx:update_item({ PK = round_robin(i), SK = string_format("item#%08d", i) },
                { add = { score = 1 } })
            end
            return true
          end))
        end
      end)
      local sum = 0
      for i = 0, UPD - 1, 97 do
        sum = sum + db:get_item({ PK = round_robin(i), SK = string_format("item#%08d", i) }).score
      end
      db:close()
      return secs, sum
    end,
    function()
      local sql, exec = h.sqlite(h.tmpdir("writes-upd-sql") .. "/b.db")
      exec("CREATE TABLE items (pk TEXT NOT NULL, sk TEXT NOT NULL, item TEXT NOT NULL, " ..
           "PRIMARY KEY (pk, sk))")
      local ins = assert(sql:prepare("INSERT INTO items (pk, sk, item) VALUES (?, ?, ?)"))
      local sel = assert(sql:prepare("SELECT item FROM items WHERE pk = ? AND sk = ?"))
      local upd = assert(sql:prepare("UPDATE items SET item = ? WHERE pk = ? AND sk = ?"))
      local begin, commit = assert(sql:prepare("BEGIN")), assert(sql:prepare("COMMIT"))
      for b = 0, UPD - 1, BATCH do
        assert(begin:execute())
        for i = b, b + BATCH - 1 do
          local it = make_item(i, round_robin(i))
          assert(ins:execute(it.PK, it.SK, cjson.encode(it)))
        end
        assert(commit:execute())
      end
      local secs = timed(function()
        for b = 0, UPD - 1, BATCH do
          assert(begin:execute())
          for i = b, b + BATCH - 1 do
            local pk, sk = round_robin(i), string_format("item#%08d", i)
            assert(sel:execute(pk, sk))
            local item = cjson.decode(sel:fetch(false)[1])
            item.score = item.score + 1
            assert(upd:execute(cjson.encode(item), pk, sk))
          end
          assert(commit:execute())
        end
      end)
      local sum = 0
      for i = 0, UPD - 1, 97 do
        local pk, sk = round_robin(i), string_format("item#%08d", i)
        assert(sel:execute(pk, sk))
        sum = sum + cjson.decode(sel:fetch(false)[1]).score
      end
      for _, st in ipairs { ins, sel, upd, begin, commit } do st:close() end
      sql:close()
      return secs, sum
    end)

  -- flushes per durable commit
  if os.execute("command -v strace >/dev/null 2>&1") then
    local n = math.min(PUTS, 500)
    local a_sync, a_dsync = traced("dynafile", n)
    local b_sync, b_dsync = traced("sqlite", n)
    if a_sync and b_sync then
      print(string_format("%-36s dynafile %.2f fsync-family + %.2f O_DSYNC writes per commit; " ..
        "SQLite %.2f + %.2f", "flushes per durable commit", a_sync, a_dsync, b_sync, b_dsync))
    else
      print("flushes per durable commit: strace could not run here")
    end
  end

  if not h.record then
    print("")
    print("writes summary (ratio = dynafile rate / peer rate; medians)")
    for _, r in ipairs(recorded) do
      print(string_format("  %-44s %7.2fx%s", r.name, r.ratio, r.target and
        string_format("  target %gx %s", r.target, r.ratio >= r.target and "met" or "MISSED")
        or ""))
    end
  end
end
