--- bench/concurrency.lua: several processes on one store, dynafile against
-- SQLite (LuaDBI, WAL mode, synchronous = FULL, one connection per
-- process) in the same run:
--   * random gets from 1 and from 2 reader processes (aggregate rate);
--   * durable single-item writes from this process while 2 reader
--     processes read without pause;
--   * a full scan from 1 process, and split over 2 processes (dynafile:
--     scan segments 1 and 2 of 2; SQLite: two rowid ranges).
-- Reader processes are started (and have opened their store) before the
-- clock starts; each waits on its own FIFO for the word to begin.  Rates
-- are measured by the wall clock: the point is the use of both cores.
local dynafile = require "dynafile"
local cjson = require "cjson"

local N = tonumber(os.getenv("BENCH_CONC_ITEMS")) or 50000
local GETS = tonumber(os.getenv("BENCH_CONC_GETS")) or 100000 -- per process
local WRITES = tonumber(os.getenv("BENCH_CONC_WRITES")) or 400
local PASSES = 10 -- each scan reads its part this many times (about a second)
local PARTITIONS = 500
local string_format = string.format

local function pk_of(i) return "user#" .. (i % PARTITIONS) end
local function sk_of(i) return string_format("item#%08d", i) end

local function make_item(i)
  return { PK = pk_of(i), SK = sk_of(i), score = i % 1000, name = "name " .. i,
           payload = string.rep(string.char(97 + i % 26), 100) }
end

-- The worker program, run as: lua worker.lua MODE BACKEND STORE FIFO ARGS...
--   get  N SEED    N random gets, prints the sum of their scores
--   loop STOPFILE  gets until STOPFILE exists, prints how many
--   scan K OF ROWS PASSES
--                  scan part K of OF (SQLite: of rowids 1..ROWS) PASSES
--                  times, prints the number of items read
local WORKER = [==[
local mode, backend, store, fifo = arg[1], arg[2], arg[3], arg[4]
local N, PARTITIONS = tonumber(arg[5]), tonumber(arg[6])
local cjson = require "cjson"
local string_format = string.format
local get, scan
if backend == "dynafile" then
  local db = assert(require("dynafile").open(store))
  get = function(i)
    local key = { PK = "user#" .. (i % PARTITIONS), SK = string_format("item#%08d", i) }
    return db:get_item(key).score
  end
  scan = function(k, of)
    local n = 0
    for item in db:scan { segment = k, segments = of } do
      if item.score then n = n + 1 end
    end
    return n
  end
else
  local DBI = require "DBI"
  local dbh = assert(DBI.Connect("SQLite3", store))
  dbh:autocommit(true)
  local sel = assert(dbh:prepare("SELECT item FROM items WHERE pk = ? AND sk = ?"))
  get = function(i)
    local pk, sk = "user#" .. (i % PARTITIONS), string_format("item#%08d", i)
    assert(sel:execute(pk, sk))
    return cjson.decode(sel:fetch(false)[1]).score
  end
  scan = function(k, of, rows)
    local per = math.ceil(rows / of)
    local q = assert(dbh:prepare("SELECT item FROM items WHERE rowid > ? AND rowid <= ?"))
    local lo, hi = (k - 1) * per, k * per
    assert(q:execute(lo, hi))
    local n = 0
    for row in q:rows(false) do
      if cjson.decode(row[1]).score then n = n + 1 end
    end
    return n
  end
end
local f = assert(io.open(fifo, "r")) -- blocks until the parent says go
f:read("*l")
f:close()
if mode == "get" then
  math.randomseed(tonumber(arg[8]))
  local sum = 0
  for _ = 1, tonumber(arg[7]) do sum = sum + get(math.random(0, N - 1)) end
  print(sum)
elseif mode == "loop" then
  local stop, n = arg[7], 0
  repeat
    for _ = 1, 256 do get(math.random(0, N - 1)) end
    n = n + 256
    local s = io.open(stop)
    if s then s:close() end
  until s
  print(n)
else
  local n = 0
  local k, of, rows = tonumber(arg[7]), tonumber(arg[8]), tonumber(arg[9])
  for _ = 1, tonumber(arg[10]) do n = n + scan(k, of, rows) end
  print(n)
end
]==]

return function(h)
  print(string_format("concurrency: %d items, %d gets per reader process, %d durable writes",
    N, GETS, WRITES))
  local work = h.tmpdir("conc")
  local script = work .. "/worker.lua"
  local f = assert(io.open(script, "w"))
  f:write(WORKER)
  f:close()
  local interpreter = arg and arg[-1] or "lua5.4"
  local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
  local env = "LUA_PATH=" .. quote(package.path) .. " LUA_CPATH=" .. quote(package.cpath)

  -- the stores -----------------------------------------------------------
  local dir, sqlpath = work .. "/dynafile", work .. "/sqlite.db"
  local db = assert(dynafile.open(dir, { pk = "PK", sk = "SK" }))
  for b = 0, N - 1, 5000 do
    db:batch_write(function(w)
      for i = b, math.min(b + 4999, N - 1) do w:put_item(make_item(i)) end
    end)
  end
  local sql, exec = h.sqlite(sqlpath)
  exec("CREATE TABLE items (pk TEXT NOT NULL, sk TEXT NOT NULL, item TEXT NOT NULL, " ..
       "PRIMARY KEY (pk, sk))")
  do
    local ins = assert(sql:prepare("INSERT INTO items (pk, sk, item) VALUES (?, ?, ?)"))
    exec("BEGIN")
    for i = 0, N - 1 do
      local item = make_item(i)
      assert(ins:execute(item.PK, item.SK, cjson.encode(item)))
    end
    exec("COMMIT")
    ins:close()
  end
  local stores = { dynafile = dir, sqlite = sqlpath }

  -- workers ----------------------------------------------------------------
  local fifo_n = 0
  -- Start a worker (it opens its store, then waits on its FIFO).
  local function spawn(mode, backend, ...)
    fifo_n = fifo_n + 1
    local fifo = string_format("%s/go.%d", work, fifo_n)
    assert(os.execute("mkfifo " .. quote(fifo)))
    local args = { mode, backend, stores[backend], fifo, N, PARTITIONS, ... }
    for i, a in ipairs(args) do args[i] = quote(a) end
    local p = assert(io.popen(string_format("env %s %s %s %s", env, quote(interpreter),
      quote(script), table.concat(args, " "))))
    return { pipe = p, fifo = fifo }
  end
  local function go(ws)
    for _, w in ipairs(ws) do
      local g = assert(io.open(w.fifo, "w"))
      g:write("go\n")
      g:close()
    end
  end
  local function collect(ws)
    local total = 0
    for _, w in ipairs(ws) do
      local out = w.pipe:read("*a")
      w.pipe:close()
      os.remove(w.fifo)
      total = total + assert(tonumber(out:match("%d+")), "a worker failed: " .. out)
    end
    return total
  end

  -- random gets from P processes --------------------------------------------
  for _, procs in ipairs { 1, 2 } do
    local ours, theirs
    h.compare(string_format("random gets, %d reader process%s", procs, procs > 1 and "es" or ""),
      "gets", GETS * procs,
      function() go(ours) return collect(ours) end,
      function() go(theirs) return collect(theirs) end,
      nil, { rounds = 3, setup = function()
        ours, theirs = {}, {}
        for p = 1, procs do
          ours[p] = spawn("get", "dynafile", GETS, 1000 + p)
          theirs[p] = spawn("get", "sqlite", GETS, 1000 + p)
        end
      end })
  end

  -- durable writes while 2 processes read ------------------------------------
  local stop_n = 0
  local readers, stop = {}, nil
  local next_key = N
  h.compare("durable puts, 2 readers running", "puts", WRITES,
    function()
      go(readers.dynafile)
      for i = 1, WRITES do
        assert(db:put_item(make_item(next_key + i)))
      end
      assert(io.open(stop.dynafile, "w")):close()
      collect(readers.dynafile)
      return WRITES
    end,
    function()
      go(readers.sqlite)
      local ins = assert(sql:prepare(
        "INSERT OR REPLACE INTO items (pk, sk, item) VALUES (?, ?, ?)"))
      for i = 1, WRITES do
        local item = make_item(next_key + i)
        assert(ins:execute(item.PK, item.SK, cjson.encode(item)))
      end
      ins:close()
      assert(io.open(stop.sqlite, "w")):close()
      collect(readers.sqlite)
      return WRITES
    end, nil, { rounds = 3, setup = function()
      next_key = next_key + WRITES
      stop_n = stop_n + 1
      stop = { dynafile = string_format("%s/stop.d.%d", work, stop_n),
               sqlite = string_format("%s/stop.s.%d", work, stop_n) }
      readers = { dynafile = {}, sqlite = {} }
      for p = 1, 2 do
        readers.dynafile[p] = spawn("loop", "dynafile", stop.dynafile)
        readers.sqlite[p] = spawn("loop", "sqlite", stop.sqlite)
      end
    end })

  -- full scan from 1 and from 2 processes ------------------------------------
  local total = N + 3 * WRITES
  local scan_rate = {}
  for _, procs in ipairs { 1, 2 } do
    local ours, theirs
    local r = h.compare(string_format("full scan, %d process%s", procs, procs > 1 and "es" or ""),
      "items", total * PASSES,
      function() go(ours) return collect(ours) end,
      function() go(theirs) return collect(theirs) end,
      nil, { rounds = 3, setup = function()
        ours, theirs = {}, {}
        for k = 1, procs do
          ours[k] = spawn("scan", "dynafile", k, procs, total, PASSES)
          theirs[k] = spawn("scan", "sqlite", k, procs, total, PASSES)
        end
      end })
    scan_rate[procs] = r
  end
  print(string_format("%-32s dynafile %.2fx, SQLite %.2fx", "scan speed-up, 2 vs 1 process",
    scan_rate[2].ours / scan_rate[1].ours, scan_rate[2].theirs / scan_rate[1].theirs))

  db:close()
  sql:close()
end
