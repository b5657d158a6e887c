--- bench/core.lua: the core workload -- load, random get, whole-partition
-- query and full scan with a Lua filter -- for dynafile and for SQLite
-- (LuaDBI, WAL mode, PRIMARY KEY(pk, sk), the item as JSON text).
--
-- 100,000 items: PK "user#"..(i % 1000), SK string.format("item#%08d", i),
-- name, score (an integer), tags (two strings) and a 100-byte payload,
-- loaded in transactions of 1,000.  Every measurement checks that both
-- stores saw the same data.
local dynafile = require "dynafile"
local cjson = require "cjson"

local N = tonumber(os.getenv("BENCH_ITEMS")) or 100000
local GETS = tonumber(os.getenv("BENCH_GETS")) or 100000
local QUERIES = tonumber(os.getenv("BENCH_QUERIES")) or 2000
local string_format, math_random = string.format, math.random
-- the data set (make_item) is bench/reads/data.lua's, as the read group's
local data = dofile(((arg and arg[0] or "bench/bench.lua"):match("^(.*)/[^/]*$") or ".")
  .. "/reads/data.lua")
local BATCH, PARTITIONS, make_item = data.BATCH, data.PARTITIONS, data.make_item

-- The same pseudo-random key sequence for both stores.
local function key_sequence(n, seed)
  math.randomseed(seed)
  local ks = {}
  for j = 1, n do ks[j] = math_random(0, N - 1) end
  return ks
end

return function(h)
  print(string_format("core: %d items in %d partitions, transactions of %d", N, PARTITIONS, BATCH))

  -- Each load round fills fresh stores; the reads below use the last ones.
  local db, sql
  local function new_stores()
    if db then db:close() end
    if sql then sql:close() end
    db = assert(dynafile.open(h.tmpdir("core-dynafile"), { pk = "PK", sk = "SK" }))
    local exec
    sql, exec = h.sqlite(h.tmpdir("core-sqlite") .. "/bench.db")
    exec("CREATE TABLE items (pk TEXT NOT NULL, sk TEXT NOT NULL, item TEXT NOT NULL, " ..
         "PRIMARY KEY (pk, sk))")
  end

  -- load ---------------------------------------------------------------
  -- Both stores at their default durability: every commit reaches the disk
  -- (dynafile sync = "full"; SQLite WAL with synchronous = FULL).
  h.compare("load (transactions of 1,000)", "items", N,
    function()
      for b = 0, N - 1, BATCH do
        db:batch_write(function(w)
          for i = b, b + BATCH - 1 do w:put_item(make_item(i)) end
        end)
      end
      return N
    end,
    function()
      local ins = assert(sql:prepare("INSERT INTO items (pk, sk, item) VALUES (?, ?, ?)"))
      local begin, commit = assert(sql:prepare("BEGIN")), assert(sql:prepare("COMMIT"))
      for b = 0, N - 1, BATCH do
        assert(begin:execute())
        for i = b, b + BATCH - 1 do
          local item = make_item(i)
          assert(ins:execute(item.PK, item.SK, cjson.encode(item)))
        end
        assert(commit:execute())
      end
      ins:close()
      return N
    end, 5, { rounds = 2, setup = new_stores })

  -- random get -----------------------------------------------------------
  local keys = key_sequence(GETS, 42)
  h.compare("random get_item", "gets", GETS,
    function()
      local sum = 0
      for j = 1, GETS do
        local i = keys[j]
        local item = db:get_item({ PK = "user#" .. (i % PARTITIONS),
                                   SK = string_format("item#%08d", i) })
        sum = sum + item.score
      end
      return sum
    end,
    function()
      local sel = assert(sql:prepare("SELECT item FROM items WHERE pk = ? AND sk = ?"))
      local sum = 0
      for j = 1, GETS do
        local i = keys[j]
        -- LuaDBI binds parameters without copying them: keep them alive
        -- in locals until the statement has been read.
        local pk, sk = "user#" .. (i % PARTITIONS), string_format("item#%08d", i)
        assert(sel:execute(pk, sk))
        local row = sel:fetch(false)
        sum = sum + cjson.decode(row[1]).score
      end
      sel:close()
      return sum
    end, 5, { rounds = 3, cpu = true })

  -- whole-partition query --------------------------------------------------
  local parts = key_sequence(QUERIES, 7)
  h.compare("query a whole partition (~100)", "queries", QUERIES,
    function()
      local count = 0
      for j = 1, QUERIES do
        for item in db:query("user#" .. (parts[j] % PARTITIONS)) do
          if item.score then count = count + 1 end
        end
      end
      return count
    end,
    function()
      local sel = assert(sql:prepare("SELECT item FROM items WHERE pk = ? ORDER BY sk"))
      local count = 0
      for j = 1, QUERIES do
        local pk = "user#" .. (parts[j] % PARTITIONS) -- kept alive (see above)
        assert(sel:execute(pk))
        for row in sel:rows(false) do
          if cjson.decode(row[1]).score then count = count + 1 end
        end
      end
      sel:close()
      return count
    end, 3, { rounds = 3, cpu = true })

  -- full scan with a Lua filter ---------------------------------------------
  h.compare("scan, Lua filter score > 899", "items", N,
    function()
      local count = 0
      for _ in db:scan({ filter = function(item) return item.score > 899 end }) do
        count = count + 1
      end
      return count
    end,
    function()
      local sel = assert(sql:prepare("SELECT item FROM items"))
      local count = 0
      assert(sel:execute())
      for row in sel:rows(false) do
        local item = cjson.decode(row[1])
        if item.score > 899 then count = count + 1 end
      end
      sel:close()
      return count
    end, 3, { rounds = 3, cpu = true })

  db:close()
  sql:close()
end
