--- bench/reads/count.lua: the read workloads of bench/reads.lua on one
-- loaded data set, counted in instructions (callgrind) rather than timed,
-- so that two builds compare on the same stored bytes.
--
--   lua bench/reads/count.lua DIR WORKLOAD COUNT
--   sh bench/reads/count.sh [ROOT ...]        (the figures per unit)
--
-- DIR holds bench/reads/data.lua's data set, as `bench/reads/phase.lua
-- dynafile load DIR` writes it.  The workloads read it: get (COUNT random
-- get_item, the key table made per get as phase.lua makes it),
-- query_prefix (COUNT 10-item begins_with queries), query_part (COUNT
-- whole-partition queries), scan_string and scan_lua (COUNT full scans
-- with the filter score > 899, as a string the store evaluates and as a
-- Lua function).  Each prints a check sum.
local dynafile = require "dynafile"

local dir, workload, count = arg[1], arg[2], tonumber(arg[3])
assert(dir and workload and count, "usage: count.lua DIR WORKLOAD COUNT")

local data = dofile(((arg and arg[0] or ""):match("^(.*)/[^/]*$") or ".") .. "/data.lua")
local N, PARTITIONS, lcg = 100000, data.PARTITIONS, data.lcg
local string_format = string.format

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
