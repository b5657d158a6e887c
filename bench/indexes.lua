--- bench/indexes.lua: secondary indexes -- the cost of a put with 0, 1
-- and 3 global secondary indexes, and a GSI query of 100 items -- for
-- dynafile and for SQLite (LuaDBI, WAL mode, synchronous=FULL) with the
-- equivalent secondary indexes in the same run.
--
-- The SQLite table keeps the item as JSON text plus the index key
-- attributes as real columns, with one `CREATE INDEX` per GSI (pk, sk) --
-- the usual, fast way to index documents in SQLite:
--   items(pk, sk, type, created, status, owner, score, item,
--         PRIMARY KEY (pk, sk))
--   gsi 1: by_type  (type, created)      <-> INDEX ON items(type, created)
--   gsi 2: by_status (status)            <-> INDEX ON items(status)
--   gsi 3: by_owner (owner, score)       <-> INDEX ON items(owner, score)
--
-- Workloads:
--   * load N items in transactions of 1,000 (sync "full" against
--     synchronous=FULL), with 0, 1 and 3 indexes (target for 3: 3x);
--   * a GSI query: the 100 items of one `type`, in `created` order, as Lua
--     tables, against SELECT ... WHERE type = ? ORDER BY created with the
--     JSON decoded by lua-cjson (target 3x); CPU time, best of 3.
--   Both stores' results are checked to agree.
--
-- Environment: BENCH_INDEX_ITEMS (default 20000), BENCH_INDEX_QUERIES
-- (default 2000).
local dynafile = require "dynafile"
local cjson = require "cjson"

local N = tonumber(os.getenv("BENCH_INDEX_ITEMS")) or 20000
local QUERIES = tonumber(os.getenv("BENCH_INDEX_QUERIES")) or 2000
local BATCH = 1000
local TYPES = math.floor(N / 100) -- 100 items per type
local string_format, string_rep = string.format, string.rep

local function make_item(i)
  return {
    PK = "user#" .. (i % 1000),
    SK = string_format("order#%08d", i),
    type = "type#" .. (i % TYPES),
    created = i,
    status = (i % 5 == 0) and "open" or "closed",
    owner = "owner#" .. (i % 97),
    score = i % 1000,
    payload = string_rep(string.char(97 + i % 26), 100),
  }
end

local GSIS = {
  { by_type = { pk = "type", sk = "created" } },
  { by_status = { pk = "status" } },
  { by_owner = { pk = "owner", sk = "score" } },
}

local SQL_INDEXES = {
  "CREATE INDEX by_type ON items(type, created)",
  "CREATE INDEX by_status ON items(status)",
  "CREATE INDEX by_owner ON items(owner, score)",
}

local function open_dynafile(h, n_indexes)
  local gsi = {}
  for i = 1, n_indexes do
    for name, def in pairs(GSIS[i]) do gsi[name] = def end
  end
  return assert(dynafile.open(h.tmpdir("indexes-dynafile"),
    { pk = "PK", sk = "SK", sync = "full", gsi = n_indexes > 0 and gsi or nil }))
end

local function open_sqlite(h, n_indexes)
  local sql, exec = h.sqlite(h.tmpdir("indexes-sqlite") .. "/bench.db")
  exec("CREATE TABLE items (pk TEXT NOT NULL, sk TEXT NOT NULL, type TEXT, created INTEGER, " ..
       "status TEXT, owner TEXT, score INTEGER, item TEXT NOT NULL, PRIMARY KEY (pk, sk))")
  for i = 1, n_indexes do exec(SQL_INDEXES[i]) end
  return sql
end

local function load(h, n_indexes, target)
  local db = open_dynafile(h, n_indexes)
  local sql = open_sqlite(h, n_indexes)
  h.compare(string_format("put with %d GSI%s", n_indexes, n_indexes == 1 and "" or "s"),
    "items", N,
    function()
      for b = 0, N - 1, BATCH do
        assert(db:batch_write(function(w)
          for i = b, b + BATCH - 1 do w:put_item(make_item(i)) end
        end))
      end
      return db:stat().items
    end,
    function()
      local ins = assert(sql:prepare("INSERT INTO items (pk, sk, type, created, status, owner, " ..
        "score, item) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"))
      local begin, commit = assert(sql:prepare("BEGIN")), assert(sql:prepare("COMMIT"))
      for b = 0, N - 1, BATCH do
        assert(begin:execute())
        for i = b, b + BATCH - 1 do
          local it = make_item(i)
          assert(ins:execute(it.PK, it.SK, it.type, it.created, it.status, it.owner, it.score,
            cjson.encode(it)))
        end
        assert(commit:execute())
      end
      ins:close()
      begin:close()
      commit:close()
      local sel = assert(sql:prepare("SELECT count(*) FROM items"))
      assert(sel:execute())
      local n = tonumber(sel:fetch(false)[1])
      sel:close()
      return n
    end, target)
  return db, sql
end

return function(h)
  load(h, 0)
  load(h, 1)
  local db, sql = load(h, 3, 3)
  assert(db:check().ok, "an index is out of step after the load")
  print(string_format("%-32s dynafile %d index entries", "", db:stat().index_entries))

  -- the same 100 items, in the same order, from both
  local sel = assert(sql:prepare("SELECT item FROM items WHERE type = ? ORDER BY created"))
  local function check_sum(items)
    local s = 0
    for k, it in ipairs(items) do s = s + it.created * k end
    return s + #items * 1e9
  end
  h.compare("GSI query, 100 items", "queries", QUERIES,
    function()
      local s = 0
      for q = 1, QUERIES do
        local items = db:query_page("type#" .. (q % TYPES), { index = "by_type" })
        s = s + check_sum(items)
      end
      return s
    end,
    function()
      local s = 0
      for q = 1, QUERIES do
        -- the bound string is kept in a local until the rows are read:
        -- LuaDBI does not keep it alive for SQLite
        local t = "type#" .. (q % TYPES)
        assert(sel:execute(t))
        local items = {}
        for row in sel:rows(false) do items[#items + 1] = cjson.decode(row[1]) end
        s = s + check_sum(items) + #t * 0
      end
      return s
    end, 3, { rounds = 3, cpu = true })
  sel:close()
  db:close()
  sql:close()
end
