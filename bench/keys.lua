--- bench/keys.lua: what a sort key's kind costs, against short string keys
-- measured in the same run (the peer here is dynafile itself).
--
-- 20,000 items in 100 partitions (200 per partition), loaded in
-- transactions of 1,000 with sync "off" (the CPU cost of keys, not the
-- disk's), then random gets, whole-partition queries and first pages of 10
-- items.  Sort keys of each variant:
--   short        "item#00000001" (13 bytes)
--   integer      1, 2, ... (Lua integers, or integral floats on 5.1)
--   decimal      dynafile.decimal("1.0000000000000000000000000001") ...
--                (29 digits: no Lua number holds them)
--   157 bytes    the longest kept whole in keys (157 + 3 encoded bytes)
--   158 bytes    the shortest kept as a 160-byte prefix and a hash: the cost
--                of the long form itself, against the line above
--   long         1,000 bytes differing in their first 8 (no two share the
--                160-byte prefix kept in keys)
--   long shared  1,000 bytes sharing their first 200 (every item of a
--                partition in one group, read whole and sorted by value:
--                the worst case of the long form)
-- CPU time, best of 3.  BENCH_KEY_VARIANTS="short,integer,decimal" runs
-- only those (short is always run: it is the peer).
local dynafile = require "dynafile"

local N = tonumber(os.getenv("BENCH_KEY_ITEMS")) or 20000
local P = 100
local GETS = tonumber(os.getenv("BENCH_KEY_GETS")) or 20000
local string_format, string_rep = string.format, string.rep

local VARIANTS = {
  { name = "short", sk = function(i) return string_format("item#%08d", i) end },
  { name = "integer", sk = function(i) return i end },
  { name = "decimal", sk = function(i)
      return dynafile.decimal(string_format("%d.%028d", i, 1))
    end },
  { name = "157 bytes",
    sk = function(i) return string_format("%08d", i) .. string_rep("x", 149) end },
  { name = "158 bytes",
    sk = function(i) return string_format("%08d", i) .. string_rep("x", 150) end },
  { name = "long", sk = function(i) return string_format("%08d", i) .. string_rep("x", 992) end },
  { name = "long shared", sk = function(i)
      return string_rep("x", 200) .. string_format("%08d", i) .. string_rep("y", 792)
    end },
}

local function best(rounds, fn)
  local t = math.huge
  for _ = 1, rounds do
    collectgarbage("collect")
    local c0 = os.clock()
    fn()
    local c = os.clock() - c0
    if c < t then t = c end
  end
  return t
end

return function(h)
  print(string_format("keys: %d items in %d partitions; CPU seconds, best of 3; "
    .. "ratio = rate / short keys' rate", N, P))
  local keys, results = {}, {}
  math.randomseed(7)
  for j = 1, GETS do keys[j] = math.random(0, N - 1) end
  local only = os.getenv("BENCH_KEY_VARIANTS")
  local variants = {}
  for _, v in ipairs(VARIANTS) do
    local listed = only and ("," .. only .. ","):find("," .. v.name .. ",", 1, true)
    if not only or v.name == "short" or listed then
      variants[#variants + 1] = v
    end
  end
  for _, v in ipairs(variants) do
    local db
    local r = {}
    r.load = best(3, function()
      if db then db:close() end
      db = assert(dynafile.open(h.tmpdir("keys-" .. v.name:gsub(" ", "-")),
        { pk = "PK", sk = "SK", sync = "off" }))
      for b = 0, N - 1, 1000 do
        db:batch_write(function(w)
          for i = b, b + 999 do w:put_item { PK = "p" .. (i % P), SK = v.sk(i), n = i } end
        end)
      end
    end)
    local sks = {}
    for i = 0, N - 1 do sks[i] = v.sk(i) end
    r.get = best(3, function()
      for j = 1, GETS do
        local i = keys[j]
        assert(db:get_item { PK = "p" .. (i % P), SK = sks[i] })
      end
    end)
    r.query = best(3, function()
      for p = 0, P - 1 do
        local n = 0
        for _ in db:query("p" .. p) do n = n + 1 end
        assert(n == N / P)
      end
    end)
    r.page = best(3, function()
      for j = 1, 2000 do
        local items = db:query_page("p" .. (j % P), { limit = 10 })
        assert(#items == 10)
      end
    end)
    db:close()
    results[v.name] = r
    local s = results.short
    print(string_format("  %-12s load %6.3f s (%5.2fx)  get %6.3f s (%5.2fx)  "
      .. "query %6.3f s (%5.2fx)  page %6.3f s (%5.2fx)", v.name,
      r.load, s.load / r.load, r.get, s.get / r.get, r.query, s.query / r.query,
      r.page, s.page / r.page))
    if v.name ~= "short" then
      for _, op in ipairs({ "load", "get", "query", "page" }) do
        h.record(string_format("%s sk %s / short sk", v.name, op), s[op] / r[op])
      end
    end
    io.stdout:flush()
  end
end
