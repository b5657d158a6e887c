--- bench/writes.lua: the write side -- batch loads, durable single puts,
-- updates in transactions -- for dynafile and for SQLite (LuaDBI, WAL
-- mode, synchronous=FULL, PRIMARY KEY(pk, sk), the item as JSON text).
--
-- Workloads (each checks that both stores end with the same data):
--   * batch load of 100,000 items in batches of 1,000, one transaction per
--     batch, twice: partitions loaded one after the other (100 items
--     each), and round-robin over 1,000 partitions (every batch puts one
--     item in each of 1,000 partitions: the worst case for a store that
--     keeps a partition's items together, as both do);
--   * single durable puts: every put_item its own commit with sync="full",
--     against single-row transactions with synchronous=FULL;
--   * update_item (add to a number) in transactions of 1,000, against
--     SELECT + decode + change + encode + UPDATE in SQLite.
--
-- Loads run twice and durable puts three times, alternating the stores,
-- each time into fresh databases, and the best time of each store counts;
-- before each comparison `sync` lets the disk settle, so the writes of one
-- phase do not slow the next.  (The machine may be shared: flush times
-- vary a lot from minute to minute, which moves the synced figures.)
--
-- Then, when strace(1) is installed, the durable single puts run again in
-- child processes under `strace -f`, and the sync calls per commit are
-- printed: fsync/fdatasync/msync, and also writes to a descriptor opened
-- with O_DSYNC (LMDB writes its meta page that way: a second flush that
-- `strace -e trace=fsync,fdatasync` does not show).
--
-- Environment: BENCH_ITEMS (default 100000), BENCH_PUTS (default 2000).
local dynafile = require "dynafile"
local cjson = require "cjson"

local N = tonumber(os.getenv("BENCH_ITEMS")) or 100000
local PUTS = tonumber(os.getenv("BENCH_PUTS")) or 2000
local BATCH = 1000
local string_format, string_rep = string.format, string.rep

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

local function sqlite_table(h, name)
  local sql, exec = h.sqlite(h.tmpdir(name) .. "/bench.db")
  exec("CREATE TABLE items (pk TEXT NOT NULL, sk TEXT NOT NULL, item TEXT NOT NULL, " ..
       "PRIMARY KEY (pk, sk))")
  return sql, exec
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

local function dynafile_load(h, part, sync)
  local db = assert(dynafile.open(h.tmpdir("writes-dynafile"),
    { pk = "PK", sk = "SK", sync = sync }))
  for b = 0, N - 1, BATCH do
    assert(db:batch_write(function(w)
      for i = b, b + BATCH - 1 do w:put_item(make_item(i, part(i))) end
    end))
  end
  return db
end

local function sqlite_load(h, part, synchronous)
  local sql, exec = sqlite_table(h, "writes-sqlite")
  exec("PRAGMA synchronous=" .. synchronous)
  local ins = assert(sql:prepare("INSERT INTO items (pk, sk, item) VALUES (?, ?, ?)"))
  local begin, commit = assert(sql:prepare("BEGIN")), assert(sql:prepare("COMMIT"))
  for b = 0, N - 1, BATCH do
    assert(begin:execute())
    for i = b, b + BATCH - 1 do
      local item = make_item(i, part(i))
      assert(ins:execute(item.PK, item.SK, cjson.encode(item)))
    end
    assert(commit:execute())
  end
  ins:close()
  begin:close()
  commit:close()
  return sql
end

-- A batch load of N items into fresh stores, partition of item i given by
-- part(i); best of two rounds.  With nosync, neither store syncs
-- (sync="off", synchronous=OFF) and the time is the process's CPU time
-- (user + system): the figure then shows the work done apart from waiting
-- for the disk, and is far less disturbed by other work on the machine.
local function load(h, name, part, target, nosync)
  settle()
  h.compare(name, "items", N,
    function()
      local db = dynafile_load(h, part, nosync and "off" or "full")
      local n = db:stat().items
      db:close()
      return n
    end,
    function()
      local sql = sqlite_load(h, part, nosync and "OFF" or "FULL")
      local n = sqlite_count(sql)
      sql:close()
      return n
    end, target, { rounds = 2, cpu = nosync })
end

-- Durable single puts: n commits, each of one item.
local function durable_puts_dynafile(dir, n)
  local db = assert(dynafile.open(dir, { pk = "PK", sk = "SK", sync = "full" }))
  for i = 1, n do assert(db:put_item(make_item(i, round_robin(i)))) end
  local count = dynafile_count(db)
  db:close()
  return count
end

local function durable_puts_sqlite(h, path, n)
  local sql = h.sqlite(path)
  local function exec(s)
    local st = assert(sql:prepare(s))
    assert(st:execute())
    st:close()
  end
  exec("CREATE TABLE IF NOT EXISTS items (pk TEXT NOT NULL, sk TEXT NOT NULL, " ..
       "item TEXT NOT NULL, PRIMARY KEY (pk, sk))")
  local ins = assert(sql:prepare("INSERT OR REPLACE INTO items (pk, sk, item) VALUES (?, ?, ?)"))
  for i = 1, n do
    local item = make_item(i, round_robin(i))
    assert(ins:execute(item.PK, item.SK, cjson.encode(item))) -- autocommit: one transaction
  end
  ins:close()
  local count = sqlite_count(sql)
  sql:close()
  return count
end

-- Run `lua bench/writes.lua child <store> <n> <dir>` under strace and
-- return the sync calls per commit: fsync-family calls, and writes to a
-- descriptor opened with O_DSYNC.
local function traced(store, n)
  local lua = arg and arg[-1] or "lua5.4"
  local script = (arg and arg[0] or "bench/bench.lua"):gsub("[^/]*$", "") .. "writes.lua"
  local base = os.tmpname()
  os.remove(base)
  local log = base .. ".strace"
  local cmd = string_format("strace -f -qq -o '%s' -e trace=openat,fsync,fdatasync,msync," ..
    "pwrite64,pwritev,write %s '%s' child %s %d '%s' >/dev/null 2>&1", log, lua, script, store, n,
    base .. "-" .. store)
  local ok = os.execute(cmd)
  os.execute("rm -rf '" .. base .. "-" .. store .. "'")
  if not ok then
    os.remove(log)
    return nil
  end
  local dsync_fds, syncs, dsync_writes = {}, 0, 0
  for line in io.lines(log) do
    local fd = line:match("openat%(.-O_DSYNC.-%)%s*=%s*(%d+)")
    if fd then dsync_fds[fd] = true end
    local wfd = line:match("pwrite64%((%d+),") or line:match("pwritev%((%d+),")
      or line:match("write%((%d+),")
    if wfd and dsync_fds[wfd] then dsync_writes = dsync_writes + 1 end
    if line:match("fsync%(") or line:match("fdatasync%(") or line:match("msync%(") then
      syncs = syncs + 1
    end
  end
  os.remove(log)
  return syncs / n, dsync_writes / n
end

local function child(store, n, dir)
  if store == "dynafile" then
    os.execute("mkdir -p '" .. dir .. "'")
    durable_puts_dynafile(dir, n)
  else
    os.execute("mkdir -p '" .. dir .. "'")
    durable_puts_sqlite(require "lib", dir .. "/bench.db", n)
  end
end

if arg and arg[1] == "child" and (arg[0] or ""):match("writes%.lua$") then
  child(arg[2], tonumber(arg[3]), arg[4])
  os.exit(0)
end

return function(h)
  print(string_format("writes: batch loads of %d items in batches of %d; %d durable puts",
    N, BATCH, PUTS))

  load(h, "batch load, partitions in order", in_order, 5)
  load(h, "batch load, 1,000 partitions r-r", round_robin, 5)
  load(h, "batch load, no sync, in order", in_order, nil, true)
  load(h, "batch load, no sync, r-r", round_robin, nil, true)

  local db = dynafile_load(h, round_robin, "full")
  local sql = sqlite_load(h, round_robin, "FULL")
  settle()

  -- update_item in transactions of 1,000 (on the round-robin data) ------
  local UPD = math.min(N, 20000)
  h.compare("update_item add, txns of 1,000", "updates", UPD,
    function()
      for b = 0, UPD - 1, BATCH do
        db:transaction(function(tx)
          for i = b, b + BATCH - 1 do
            tx:update_item({ PK = round_robin(i), SK = string_format("item#%08d", i) },
              { add = { score = 1 } })
          end
        end)
      end
      local sum = 0
      for i = 0, UPD - 1, 97 do
        sum = sum + db:get_item({ PK = round_robin(i), SK = string_format("item#%08d", i) }).score
      end
      return sum
    end,
    function()
      local sel = assert(sql:prepare("SELECT item FROM items WHERE pk = ? AND sk = ?"))
      local upd = assert(sql:prepare("UPDATE items SET item = ? WHERE pk = ? AND sk = ?"))
      local begin, commit = assert(sql:prepare("BEGIN")), assert(sql:prepare("COMMIT"))
      for b = 0, UPD - 1, BATCH do
        assert(begin:execute())
        for i = b, b + BATCH - 1 do
          local pk, sk = round_robin(i), string_format("item#%08d", i)
          assert(sel:execute(pk, sk))
          local item = cjson.decode(sel:fetch(false)[1])
          item.score = item.score + 1
          local text = cjson.encode(item)
          assert(upd:execute(text, pk, sk))
        end
        assert(commit:execute())
      end
      local sum = 0
      for i = 0, UPD - 1, 97 do
        local pk, sk = round_robin(i), string_format("item#%08d", i)
        assert(sel:execute(pk, sk))
        sum = sum + cjson.decode(sel:fetch(false)[1]).score
      end
      sel:close()
      upd:close()
      begin:close()
      commit:close()
      return sum
    end)
  db:close()
  sql:close()

  -- durable single puts ---------------------------------------------------
  settle()
  h.compare("durable put_item (sync=full)", "puts", PUTS,
    function() return durable_puts_dynafile(h.tmpdir("writes-durable"), PUTS) end,
    function()
      return durable_puts_sqlite(h, h.tmpdir("writes-durable-sqlite") .. "/b.db", PUTS)
    end, nil, { rounds = 3 })

  if os.execute("command -v strace >/dev/null 2>&1") then
    local n = math.min(PUTS, 500)
    local a_sync, a_dsync = traced("dynafile", n)
    local b_sync, b_dsync = traced("sqlite", n)
    if a_sync and b_sync then
      print(string_format("%-32s dynafile %.2f fsync-family + %.2f O_DSYNC writes per commit; " ..
        "SQLite %.2f + %.2f", "sync calls per durable commit", a_sync, a_dsync, b_sync, b_dsync))
    else
      print("sync calls per durable commit: strace could not run here")
    end
  end
end
