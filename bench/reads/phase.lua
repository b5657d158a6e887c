--- bench/reads/phase.lua: one phase of the read benchmark (bench/reads.lua)
-- in a process of its own, so every read phase starts as a program that
-- has just started does: no page of the store mapped or cached in the
-- process yet.
--
--   lua bench/reads/phase.lua STORE WORKLOAD DIR
--
-- STORE is `dynafile` or `sqlite` (LuaDBI, WAL mode, the item as JSON
-- text decoded with cjson); WORKLOAD one of
--   load          100,000 items in transactions of 1,000, canonical order
--   scan_lua      full scan, Lua function filter score > 899
--   scan_string   full scan, filter evaluated by the store (dynafile: the
--                 string "score > 899" in C; SQLite: json_extract in SQL)
--   get           BENCH_GETS random get_item (a fresh item table each)
--   query_prefix  BENCH_QUERIES queries for the 10 items of a partition
--                 whose sort key begins with a given prefix
--   query_part    BENCH_PART_QUERIES queries for a whole partition (100)
-- The clock runs from before the store is opened to the end of the
-- workload (the modules are loaded before).  Every workload hands each
-- item it returns to the program as a Lua table, and checks it.  The phase
-- prints one line:
--   ok UNITS CHECK CPU_SECONDS WALL_SECONDS PEAK_RSS_KB ANON_KB FILE_KB
--      MINOR_FAULTS MAJOR_FAULTS
-- CHECK (a count or a sum) must agree between the stores; the memory
-- figures are the process's peak resident set (VmHWM) and its anonymous and
-- file-backed parts at the end (RssAnon, RssFile) from /proc/self/status,
-- the page faults those of the whole process (/proc/self/stat).
--
-- The data set is bench/reads/data.lua's (bench/core.lua's too): PK
-- "user#"..(i % 1000), SK string.format("item#%08d", i), a name, score =
-- i % 1000, two tags and a 100-byte payload, about 200 bytes per item.
local store, workload, dir = arg[1], arg[2], arg[3]
assert(store and workload and dir, "usage: phase.lua STORE WORKLOAD DIR")

local N = tonumber(os.getenv("BENCH_ITEMS")) or 100000
local GETS = tonumber(os.getenv("BENCH_GETS")) or 100000
local QUERIES = tonumber(os.getenv("BENCH_QUERIES")) or 20000
local PART_QUERIES = tonumber(os.getenv("BENCH_PART_QUERIES")) or 2000
-- the data set (make_item, lcg) is bench/reads/data.lua's
local data = dofile(((arg and arg[0] or ""):match("^(.*)/[^/]*$") or ".") .. "/data.lua")
local PARTITIONS, BATCH, make_item, lcg = data.PARTITIONS, data.BATCH, data.make_item, data.lcg
local string_format, string_char = string.format, string.char

local function now()
  local f = assert(io.popen("date +%s.%N"))
  local s = f:read("*l")
  f:close()
  return assert(tonumber(s))
end

-- minor and major page faults of this process so far
local function faults()
  local f = io.open("/proc/self/stat")
  if not f then return 0, 0 end
  local s = f:read("*a")
  f:close()
  -- the fields after the command name (which is in parentheses)
  local rest = s:match("%) (.*)$") or ""
  local fields = {}
  for x in rest:gmatch("%S+") do fields[#fields + 1] = x end
  -- minflt is field 10 of stat(5), majflt field 12; rest starts at field 3
  return tonumber(fields[8]) or 0, tonumber(fields[10]) or 0
end

local function status_kb(field)
  local f = io.open("/proc/self/status")
  if not f then return 0 end
  local s = f:read("*a")
  f:close()
  return tonumber(s:match(field .. ":%s*(%d+)")) or 0
end

-- the same key sequences for both stores, made before the clock starts
local get_keys, prefix_parts, prefix_of, parts = {}, {}, {}, {}
if workload == "get" then
  local r = lcg(42)
  for j = 1, GETS do
    local i = r(N)
    get_keys[j] = { "user#" .. (i % PARTITIONS), string_format("item#%08d", i) }
  end
elseif workload == "query_prefix" then
  -- A partition p holds i = p + 1000 * j, j = 0..99, so the sort keys
  -- beginning with "item#000d" are the 10 with j in 10d..10d+9.
  local r = lcg(11)
  for q = 1, QUERIES do
    prefix_parts[q] = "user#" .. r(PARTITIONS)
    prefix_of[q] = "item#000" .. r(10)
  end
elseif workload == "query_part" then
  local r = lcg(7)
  for q = 1, PART_QUERIES do parts[q] = "user#" .. r(PARTITIONS) end
end

-- the modules, loaded before the clock starts
local dynafile, DBI, cjson
if store == "dynafile" then
  dynafile = require "dynafile"
else
  DBI, cjson = require "DBI", require "cjson"
end

local run = {}

-- dynafile -------------------------------------------------------------------

function run.dynafile_load()
  local db = assert(dynafile.open(dir, { pk = "PK", sk = "SK", sync = "off" }))
  for b = 0, N - 1, BATCH do
    db:batch_write(function(w)
      for i = b, math.min(b + BATCH, N) - 1 do w:put_item(make_item(i)) end
    end)
  end
  db:close()
  return N, N
end

local function dynafile_scan(filter)
  local db = assert(dynafile.open(dir))
  local count = 0
  for item in db:scan({ filter = filter }) do
    if item.score > 899 then count = count + 1 end
  end
  db:close()
  return N, count
end

function run.dynafile_scan_lua()
  return dynafile_scan(function(item) return item.score > 899 end)
end

function run.dynafile_scan_string()
  return dynafile_scan("score > 899")
end

function run.dynafile_get()
  local db = assert(dynafile.open(dir))
  local sum = 0
  for j = 1, GETS do
    local k = get_keys[j]
    sum = sum + db:get_item({ PK = k[1], SK = k[2] }).score
  end
  db:close()
  return GETS, sum
end

function run.dynafile_query_prefix()
  local db = assert(dynafile.open(dir))
  local count = 0
  for q = 1, QUERIES do
    for item in db:query(prefix_parts[q], { begins_with = prefix_of[q] }) do
      if item.score then count = count + 1 end
    end
  end
  db:close()
  return QUERIES, count
end

function run.dynafile_query_part()
  local db = assert(dynafile.open(dir))
  local count = 0
  for q = 1, PART_QUERIES do
    for item in db:query(parts[q]) do
      if item.score then count = count + 1 end
    end
  end
  db:close()
  return PART_QUERIES, count
end

-- SQLite ---------------------------------------------------------------------

local function sqlite_open()
  local dbh = assert(DBI.Connect("SQLite3", dir .. "/bench.db"))
  dbh:autocommit(true)
  local function exec(sql)
    local sth = assert(dbh:prepare(sql))
    assert(sth:execute())
    sth:close()
  end
  exec("PRAGMA journal_mode=WAL")
  return dbh, exec
end

function run.sqlite_load()
  local sql, exec = sqlite_open()
  exec("PRAGMA synchronous=OFF")
  exec("CREATE TABLE items (pk TEXT NOT NULL, sk TEXT NOT NULL, item TEXT NOT NULL, " ..
       "PRIMARY KEY (pk, sk))")
  local ins = assert(sql:prepare("INSERT INTO items (pk, sk, item) VALUES (?, ?, ?)"))
  local begin, commit = assert(sql:prepare("BEGIN")), assert(sql:prepare("COMMIT"))
  for b = 0, N - 1, BATCH do
    assert(begin:execute())
    for i = b, math.min(b + BATCH, N) - 1 do
      local item = make_item(i)
      assert(ins:execute(item.PK, item.SK, cjson.encode(item)))
    end
    assert(commit:execute())
  end
  ins:close()
  begin:close()
  commit:close()
  sql:close()
  return N, N
end

local function sqlite_scan(query, lua_filter)
  local decode = cjson.decode
  local sql = sqlite_open()
  local sel = assert(sql:prepare(query))
  local count = 0
  assert(sel:execute())
  for row in sel:rows(false) do
    local item = decode(row[1])
    if not lua_filter or lua_filter(item) then
      if item.score > 899 then count = count + 1 end
    end
  end
  sel:close()
  sql:close()
  return N, count
end

function run.sqlite_scan_lua()
  return sqlite_scan("SELECT item FROM items", function(item) return item.score > 899 end)
end

function run.sqlite_scan_string()
  return sqlite_scan("SELECT item FROM items WHERE json_extract(item, '$.score') > 899")
end

function run.sqlite_get()
  local decode = cjson.decode
  local sql = sqlite_open()
  local sel = assert(sql:prepare("SELECT item FROM items WHERE pk = ? AND sk = ?"))
  local sum = 0
  for j = 1, GETS do
    -- LuaDBI binds parameters without copying them: keep them alive in
    -- locals until the row has been read.
    local k = get_keys[j]
    local pk, sk = k[1], k[2]
    assert(sel:execute(pk, sk))
    sum = sum + decode(sel:fetch(false)[1]).score
  end
  sel:close()
  sql:close()
  return GETS, sum
end

function run.sqlite_query_prefix()
  local decode = cjson.decode
  local sql = sqlite_open()
  local sel = assert(sql:prepare(
    "SELECT item FROM items WHERE pk = ? AND sk >= ? AND sk < ? ORDER BY sk"))
  local count = 0
  for q = 1, QUERIES do
    local pk, lo = prefix_parts[q], prefix_of[q] -- kept alive (see above)
    local hi = lo:sub(1, -2) .. string_char(lo:byte(-1) + 1)
    assert(sel:execute(pk, lo, hi))
    for row in sel:rows(false) do
      if decode(row[1]).score then count = count + 1 end
    end
  end
  sel:close()
  sql:close()
  return QUERIES, count
end

function run.sqlite_query_part()
  local decode = cjson.decode
  local sql = sqlite_open()
  local sel = assert(sql:prepare("SELECT item FROM items WHERE pk = ? ORDER BY sk"))
  local count = 0
  for q = 1, PART_QUERIES do
    local pk = parts[q] -- kept alive (see above)
    assert(sel:execute(pk))
    for row in sel:rows(false) do
      if decode(row[1]).score then count = count + 1 end
    end
  end
  sel:close()
  sql:close()
  return PART_QUERIES, count
end

-- -----------------------------------------------------------------------------

local fn = run[store .. "_" .. workload]
assert(fn, "unknown store or workload: " .. store .. " " .. workload)
collectgarbage("collect")
local w0, c0 = now(), os.clock()
local units, check = fn()
local c1, w1 = os.clock(), now()
local minflt, majflt = faults()
print(string_format("ok %d %s %.6f %.6f %d %d %d %d %d", units, tostring(check), c1 - c0, w1 - w0,
  status_kb("VmHWM"), status_kb("RssAnon"), status_kb("RssFile"), minflt, majflt))
