--- bench/plain/items.lua: the plain-item workload of issue 16's "no
-- regression beyond 3% for items without the new types", counted in
-- instructions (callgrind), not timed.
--
--   lua bench/plain/items.lua KEYS PHASE COUNT
--   sh bench/plain/count.sh [LUA_CPATH dir]    (the figures per item)
--
-- Plain items: strings, integer and float numbers, booleans, a map and a
-- list; no set, binary value or decimal.  KEYS picks the table:
--   string   PK "user#"..(i % 100), SK string.format("item#%08d", i)
--   int      PK "user#"..(i % 100), SK i (an integer sort key)
-- Both tables have two GSIs: by_kind (pk "kind", a string; sk "score", an
-- integer) and by_owner (pk "owner", a string; keys only).
-- PHASE is one of
--   load     COUNT items, put in transactions of 500 (db:batch_write)
--   get      2,000 items loaded, then COUNT get_item of pseudo-random keys
--   query    2,000 items loaded, then COUNT queries of a whole partition
--            (20 items each)
-- Each phase checks what it read.  count.sh runs every phase at two
-- counts under callgrind and divides the difference in instructions by the
-- difference in count, which leaves out start-up, loading of modules and
-- the fixed part of the load: the figure is per item put, per get, per
-- query.
local dynafile = require "dynafile"

local keys, phase, count = arg[1], arg[2], tonumber(arg[3])
assert((keys == "string" or keys == "int") and phase and count,
       "usage: items.lua string|int load|get|query COUNT")

local PARTITIONS, BATCH, LOADED = 100, 500, 2000
local string_format, string_rep, string_char = string.format, string.rep, string.char

local function sk_of(i)
  if keys == "int" then return i end
  return string_format("item#%08d", i)
end

local function make_item(i)
  return {
    PK = "user#" .. (i % PARTITIONS),
    SK = sk_of(i),
    name = "name " .. i,
    kind = "kind#" .. (i % 7),
    owner = "owner#" .. (i % 13),
    score = i % 1000,
    ratio = i / 7,
    active = i % 2 == 0,
    tags = { "tag" .. (i % 7), "tag" .. (i % 11) },
    address = { street = "street " .. i, zip = 10000 + i % 900, geo = { lat = 1.5, lon = -2.25 } },
    payload = string_rep(string_char(97 + i % 26), 100),
  }
end

-- Park and Miller's generator: the same keys on every Lua (the read
-- benchmark's, bench/reads/data.lua).
local HERE = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local lcg = dofile(HERE .. "/../reads/data.lua").lcg

local dir = os.tmpname()
os.remove(dir)
local db = assert(dynafile.open(dir, {
  pk = "PK", sk = "SK",
  gsi = {
    by_kind = { pk = "kind", sk = "score" },
    by_owner = { pk = "owner", projection = "keys" },
  },
}))

local function load(n)
  for b = 0, n - 1, BATCH do
    db:batch_write(function(w)
      for i = b, math.min(b + BATCH, n) - 1 do w:put_item(make_item(i)) end
    end)
  end
end

local check = 0
if phase == "load" then
  load(count)
  check = db:stat().items
  assert(check == count, "loaded " .. check .. " items, not " .. count)
elseif phase == "get" then
  load(LOADED)
  local r = lcg(42)
  for _ = 1, count do
    local i = r(LOADED)
    local item = db:get_item({ PK = "user#" .. (i % PARTITIONS), SK = sk_of(i) })
    assert(item.score == i % 1000)
    check = check + item.score
  end
elseif phase == "query" then
  load(LOADED)
  local r = lcg(7)
  for _ = 1, count do
    for item in db:query("user#" .. r(PARTITIONS)) do
      if item.active ~= nil then check = check + 1 end
    end
  end
  assert(check == count * LOADED / PARTITIONS)
else
  error("unknown phase " .. phase)
end
db:close()
os.execute("rm -rf '" .. dir .. "'")
print(keys, phase, count, check)
