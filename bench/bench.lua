--- bench/bench.lua: run the benchmark groups (`make bench`).
--
--   lua bench/bench.lua [group ...]
--
-- With no argument every group in bench/ runs: each bench/<group>.lua
-- other than this file and lib.lua returns function(h) taking the harness
-- (bench/lib.lua).  To add workloads, add a file; nothing else changes.
-- Exits non-zero when a target ratio was missed.
local h = require "lib"

local function groups_in_dir()
  local dir = (arg and arg[0] or "bench/bench.lua"):match("^(.*)/[^/]*$") or "."
  local list = {}
  local p = assert(io.popen("ls '" .. dir .. "'"))
  for name in p:lines() do
    local g = name:match("^(.-)%.lua$")
    if g and g ~= "bench" and g ~= "lib" then list[#list + 1] = g end
  end
  p:close()
  table.sort(list, function(a, b)
    if a == "core" then return b ~= "core" end -- the core group first
    if b == "core" then return false end
    return a < b
  end)
  return list
end

local groups = { ... }
if #groups == 0 then groups = groups_in_dir() end

local ok, err = pcall(function()
  for _, g in ipairs(groups) do
    print("")
    print("== " .. g)
    require(g)(h)
  end
end)
h.cleanup()
if not ok then error(err, 0) end
local missed = h.summary()
os.exit(missed == 0 and 0 or 1)
