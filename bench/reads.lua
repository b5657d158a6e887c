--- bench/reads.lua: the read workload -- a full scan with a filter string
-- evaluated in C, the same scan with a Lua function filter, and a
-- 10-item begins_with query -- for dynafile and for SQLite (LuaDBI, WAL
-- mode, PRIMARY KEY(pk, sk), the item as JSON text).
--
-- 100,000 items in 1,000 partitions of 100: PK "part#"..p, SK
-- string.format("item#%03d", j) for j = 0..99, score = (p * 100 + j) % 1000
-- (so `score > 899` holds for one item in ten), a name and a 100-byte
-- payload.  Both sides hand every matching item to the program as a Lua
-- table: dynafile decodes MessagePack, SQLite's rows are decoded with
-- cjson.  Every measurement checks that both stores returned the same
-- number of items.
--
--   scan, filter string score > 899    dynafile evaluates the filter in C
--                                      on the stored bytes; SQLite
--                                      filters with json_extract in SQL
--   scan, Lua filter vs SQL filter     the same scan with a Lua function
--                                      filter (every item becomes a table
--                                      first) against the same SQL
--   begins_with query (10 of 100)      query(pk, {begins_with = "item#05"})
--                                      against pk = ? AND sk >= ? AND sk < ?
local dynafile = require "dynafile"
local cjson = require "cjson"

local PARTITIONS = 1000
local PER = 100
local N = PARTITIONS * PER
local QUERIES = tonumber(os.getenv("BENCH_QUERIES")) or 20000
local SCANS = tonumber(os.getenv("BENCH_SCANS")) or 3
local string_format, string_rep = string.format, string.rep
-- Reads of cached data in this one process: timed by CPU time, best of 3.
local TIMING = { rounds = 3, cpu = true }

local function make_item(p, j)
  return {
    PK = "part#" .. p,
    SK = string_format("item#%03d", j),
    name = "name " .. (p * PER + j),
    score = (p * PER + j) % 1000,
    payload = string_rep(string.char(97 + j % 26), 100),
  }
end

return function(h)
  print(string_format("reads: %d items in %d partitions of %d", N, PARTITIONS, PER))

  local db = assert(dynafile.open(h.tmpdir("reads-dynafile"),
    { pk = "PK", sk = "SK", sync = "off" }))
  local sql, exec = h.sqlite(h.tmpdir("reads-sqlite") .. "/bench.db")
  exec("PRAGMA synchronous=OFF")
  exec("CREATE TABLE items (pk TEXT NOT NULL, sk TEXT NOT NULL, doc TEXT NOT NULL, " ..
       "PRIMARY KEY (pk, sk))")

  -- load (not compared: the core group measures loading) ------------------
  local ins = assert(sql:prepare("INSERT INTO items (pk, sk, doc) VALUES (?, ?, ?)"))
  local begin, commit = assert(sql:prepare("BEGIN")), assert(sql:prepare("COMMIT"))
  for p = 0, PARTITIONS - 1 do
    db:batch_write(function(w)
      for j = 0, PER - 1 do w:put_item(make_item(p, j)) end
    end)
    assert(begin:execute())
    for j = 0, PER - 1 do
      local item = make_item(p, j)
      assert(ins:execute(item.PK, item.SK, cjson.encode(item)))
    end
    assert(commit:execute())
  end
  ins:close()

  local function sql_filtered_scan()
    local sel = assert(sql:prepare(
      "SELECT doc FROM items WHERE json_extract(doc, '$.score') > 899"))
    local count = 0
    for _ = 1, SCANS do
      assert(sel:execute())
      for row in sel:rows(false) do
        if cjson.decode(row[1]).score then count = count + 1 end
      end
    end
    sel:close()
    return count
  end

  -- full scan, filter string ----------------------------------------------
  h.compare("scan, filter string score > 899", "items", N * SCANS,
    function()
      local count = 0
      for _ = 1, SCANS do
        for item in db:scan({ filter = "score > 899" }) do
          if item.score then count = count + 1 end
        end
      end
      return count
    end,
    sql_filtered_scan, 3, TIMING)

  -- the same scan, Lua function filter --------------------------------------
  h.compare("scan, Lua filter vs SQL filter", "items", N * SCANS,
    function()
      local count = 0
      local function f(item) return item.score > 899 end
      for _ = 1, SCANS do
        for item in db:scan({ filter = f }) do
          if item.score then count = count + 1 end
        end
      end
      return count
    end,
    sql_filtered_scan, nil, TIMING)

  -- 10-item begins_with query on a 100-item partition ------------------------
  math.randomseed(11)
  local parts, prefixes = {}, {}
  for q = 1, QUERIES do
    parts[q] = "part#" .. math.random(0, PARTITIONS - 1)
    prefixes[q] = string_format("item#%02d", math.random(0, PER / 10 - 1))
  end
  h.compare("begins_with query, 10 of 100", "queries", QUERIES,
    function()
      local count = 0
      for q = 1, QUERIES do
        for item in db:query(parts[q], { begins_with = prefixes[q] }) do
          if item.score then count = count + 1 end
        end
      end
      return count
    end,
    function()
      local sel = assert(sql:prepare(
        "SELECT doc FROM items WHERE pk = ? AND sk >= ? AND sk < ? ORDER BY sk"))
      local count = 0
      for q = 1, QUERIES do
        -- LuaDBI binds parameters without copying them: keep them alive in
        -- locals until the rows have been read.
        local pk, lo = parts[q], prefixes[q]
        local hi = lo:sub(1, -2) .. string.char(lo:byte(-1) + 1)
        assert(sel:execute(pk, lo, hi))
        for row in sel:rows(false) do
          if cjson.decode(row[1]).score then count = count + 1 end
        end
      end
      sel:close()
      return count
    end, 5, TIMING)

  db:close()
  sql:close()
end
