--- bench/reads/count.lua: the read workloads of bench/reads.lua on one
-- loaded data set, counted in instructions (callgrind) rather than timed,
-- so that two builds compare on the same stored bytes.
--
--   lua bench/reads/count.lua DIR load
--   lua bench/reads/count.lua DIR WORKLOAD COUNT
--   sh bench/reads/count.sh [ROOT ...]        (the figures per unit)
--
-- load writes bench/core.lua's data set (100,000 items of about 200 bytes
-- in 1,000 partitions, as bench/reads/phase.lua loads it) into DIR.  The
-- workloads read it: get (COUNT random get_item, the key table made per
-- get as phase.lua makes it), query_prefix (COUNT 10-item begins_with
-- queries), query_part (COUNT whole-partition queries), scan_string and
-- scan_lua (COUNT full scans with the filter score > 899, as a string the
-- store evaluates and as a Lua function).  Each prints a check sum.
local dynafile = require "dynafile"

local dir, workload, count = arg[1], arg[2], tonumber(arg[3])
assert(dir and workload, "usage: count.lua DIR load|WORKLOAD [COUNT]")

local N, PARTITIONS, BATCH = 100000, 1000, 1000
local string_format, string_rep, string_char = string.format, string.rep, string.char

-- Park and Miller's generator: the same keys on every Lua.
local function lcg(seed)
  local x = seed
  return function(m)
    x = (x * 16807) % 2147483647
    return x % m
  end
end

if workload == "load" then
  local db = assert(dynafile.open(dir, { pk = "PK", sk = "SK", sync = "off" }))
  for b = 0, N - 1, BATCH do
    db:batch_write(function(w)
      for i = b, b + BATCH - 1 do
        w:put_item({
          PK = "user#" .. (i % PARTITIONS),
          SK = string_format("item#%08d", i),
          name = "name " .. i,
          score = i % 1000,
          tags = { "tag" .. (i % 7), "tag" .. (i % 11) },
          payload = string_rep(string_char(97 + i % 26), 100),
        })
      end
    end)
  end
  db:close()
  print("loaded", N)
  return
end

assert(count, "usage: count.lua DIR WORKLOAD COUNT")
local db = assert(dynafile.open(dir))
local r = lcg(42)
local sum = 0
if workload == "get" then
  local keys = {}
  for j = 1, count do
    local i = r(N)
    keys[j] = { "user#" .. (i % PARTITIONS), string_format("item#%08d", i) }
  end
  for j = 1, count do
    local k = keys[j]
    sum = sum + db:get_item({ PK = k[1], SK = k[2] }).score
  end
elseif workload == "query_prefix" then
  for _ = 1, count do
    for item in db:query("user#" .. r(PARTITIONS), { begins_with = "item#000" .. r(10) }) do
      sum = sum + item.score
    end
  end
elseif workload == "query_part" then
  for _ = 1, count do
    for item in db:query("user#" .. r(PARTITIONS)) do sum = sum + item.score end
  end
elseif workload == "scan_string" or workload == "scan_lua" then
  local filter = workload == "scan_string" and "score > 899"
                 or function(item) return item.score > 899 end
  for _ = 1, count do
    for item in db:scan({ filter = filter }) do sum = sum + item.score end
  end
else
  error("unknown workload " .. workload)
end
db:close()
print(workload, count, sum)
