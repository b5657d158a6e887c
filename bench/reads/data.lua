--- bench/reads/data.lua: the data set of the core and read benchmarks
-- (bench/core.lua, bench/reads/phase.lua, bench/reads/count.lua), in one
-- place so that every figure is of the same items.
--
--   local data = dofile(<this directory> .. "/data.lua")
--
-- data.make_item(i): PK "user#"..(i % 1000), SK string.format("item#%08d",
-- i), a name, score = i % 1000, two tags and a 100-byte payload, about 200
-- bytes; loaded in transactions of data.BATCH over data.PARTITIONS
-- partitions.  data.lcg(seed): a small deterministic generator (Park and
-- Miller's: the same sequence on every Lua version, unlike math.random;
-- every product is exact in a double); its result r(m) is in 0..m-1.
local string_format, string_rep, string_char = string.format, string.rep, string.char

local M = { PARTITIONS = 1000, BATCH = 1000 }
local PARTITIONS = M.PARTITIONS

function M.make_item(i)
  return {
    PK = "user#" .. (i % PARTITIONS),
    SK = string_format("item#%08d", i),
    name = "name " .. i,
    score = i % 1000,
    tags = { "tag" .. (i % 7), "tag" .. (i % 11) },
    payload = string_rep(string_char(97 + i % 26), 100),
  }
end

function M.lcg(seed)
  local x = seed
  return function(m)
    x = (x * 16807) % 2147483647
    return x % m
  end
end

return M
