--- bench/open/open.lua: the cost of opening a database that needs no
-- recovery, for bench/open/count.sh.
--
--   lua bench/open/open.lua DIR N
--
-- Makes DIR once (20,000 items in 500 partitions, one global secondary
-- index) when it holds no database, then opens and closes it N times and
-- prints the CPU time per open and close in microseconds.
local dynafile = require "dynafile"

local dir, n = arg[1], tonumber(arg[2] or 2000)
assert(dir, "usage: open.lua DIR [N]")
local probe = io.open(dir .. "/data.mdb")
if probe then
  probe:close()
else
  local db = assert(dynafile.open(dir, { pk = "pk", sk = "sk",
                                          gsi = { byv = { pk = "g", sk = "v" } } }))
  for b = 0, 19 do
    db:transaction(function(tx)
      for i = 1, 1000 do
        local k = b * 1000 + i
        tx:put_item({ pk = "p" .. (k % 500), sk = k, g = "g" .. (k % 7), v = k * 3,
                      s = "some text " .. k })
      end
    end)
  end
  db:close()
end
local c0 = os.clock()
for _ = 1, n do
  local db = assert(dynafile.open(dir))
  db:close()
end
local c1 = os.clock()
local db = assert(dynafile.open(dir))
assert(db:get_item({ pk = "p7", sk = 7 }).v == 21)
db:close()
print(string.format("%.1f", (c1 - c0) / n * 1e6))
