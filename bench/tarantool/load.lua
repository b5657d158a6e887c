-- load.lua -- Tarantool's side of the bulk-load comparison in
-- bench/writes.lua, run as its own process:
--
--   tarantool load.lua DIR N BATCH PATTERN
--
-- A memtx space with a primary key (PK, SK), write-ahead log with an
-- fsync per commit (wal_mode = "fsync"), no snapshots during the load;
-- N items of the same shape as the Lua benchmark's, in transactions of
-- BATCH, partitions "in_order" (100 items each, one after the other) or
-- "round_robin" (over 1,000).  Prints "tarantool_load N SECONDS COUNT" --
-- the count read back -- and exits.
-- luacheck: globals box
local dir, n, batch, pattern = arg[1], tonumber(arg[2]), tonumber(arg[3]), arg[4]
box.cfg {
  work_dir = dir, wal_mode = "fsync", log_level = 2, memtx_memory = 1024 * 1024 * 1024,
  checkpoint_interval = 0, background = false,
}
local clock = require "clock"
local s = box.schema.space.create("items")
s:create_index("primary", { parts = { { 1, "string" }, { 2, "string" } } })

local fmt, rep, char, floor = string.format, string.rep, string.char, math.floor
local function pk_of(i)
  if pattern == "in_order" then return "user#" .. floor(i / 100) end
  return "user#" .. (i % 1000)
end
local t0 = clock.monotonic()
for b = 0, n - 1, batch do
  box.begin()
  for i = b, b + batch - 1 do
    s:insert { pk_of(i), fmt("item#%08d", i), {
      name = "name " .. i, score = i % 1000, tags = { "tag" .. (i % 7), "tag" .. (i % 11) },
      payload = rep(char(97 + i % 26), 100),
    } }
  end
  box.commit()
end
local t1 = clock.monotonic()
print(fmt("tarantool_load %d %.6f %d", n, t1 - t0, s:count()))
io.stdout:flush()
os.exit(0)
