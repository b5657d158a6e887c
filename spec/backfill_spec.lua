-- Building a new global index from the items already stored (backfill) at
-- open: the same entries as writing them one by one, progress reports,
-- map growth, and all-or-nothing failure.

local dynafile = require "dynafile"
local backend = dofile("spec/support/backend.lua")

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  return p
end

local function rmdir(p)
  os.execute("rm -rf '" .. p .. "'")
end

local GSI = {
  by_grp = { pk = "grp", sk = "rank" }, by_color = { pk = "color", projection = "keys" },
}

local function fill(db, n)
  db:batch_write(function(w)
    for i = 1, n do
      local item = { PK = "p" .. (i % 97), SK = i, grp = "g" .. (i % 13), rank = (i * 31) % 1000 }
      if i % 5 ~= 0 then item.color = (i % 2 == 0) and "red" or "blue" end -- sparse
      w:put_item(item)
    end
  end)
end

-- Every entry of an index, in index order, as a string.
local function dump(db, index)
  local out = {}
  for it in db:scan { index = index } do
    out[#out + 1] = table.concat({ it.PK, it.SK, tostring(it.grp), tostring(it.rank),
      tostring(it.color) }, "|")
  end
  return out
end

describe("building a new global index at open", function()
  local a, b

  before_each(function()
    a, b = tmpdir(), tmpdir()
  end)

  after_each(function()
    rmdir(a)
    rmdir(b)
  end)

  it("gives the same index over 10,000 items as writing them one by one", function()
    local live = assert(dynafile.open(a, { sync = "off", gsi = GSI }))
    fill(live, 10000)
    local plain = assert(dynafile.open(b, { sync = "off" }))
    fill(plain, 10000)
    plain:close()
    local built = assert(dynafile.open(b, { gsi = GSI }))
    for _, index in ipairs { "by_grp", "by_color" } do
      local x, y = dump(live, index), dump(built, index)
      assert.equal(#x, #y)
      assert.same(x, y)
    end
    backend.assert_counts(live, { index_entries = 10000 + 8000 })
    backend.assert_counts(built, { index_entries = 10000 + 8000 })
    backend.assert_checked(built)
    local n = 0
    for _ in built:query("g3", { index = "by_grp", between = { 100, 199 } }) do n = n + 1 end
    local m = 0
    for _ in live:query("g3", { index = "by_grp", between = { 100, 199 } }) do m = m + 1 end
    assert.equal(m, n)
    assert.is_true(n > 0)
    live:close()
    built:close()
  end)

  it("reports progress to the progress function, ending at the item count", function()
    local db = assert(dynafile.open(a, { sync = "off" }))
    fill(db, 5000)
    db:close()
    local reports = {}
    db = assert(dynafile.open(a, {
      gsi = { by_grp = GSI.by_grp },
      progress = function(name, done, total) reports[#reports + 1] = { name, done, total } end,
    }))
    assert.is_true(#reports >= 1)
    local prev = -1
    for _, r in ipairs(reports) do
      assert.equal("by_grp", r[1])
      assert.equal(5000, r[3])
      assert.is_true(r[2] >= prev)
      prev = r[2]
    end
    assert.equal(5000, reports[#reports][2])
    -- nothing to build: no reports
    db:close()
    reports = {}
    db = assert(dynafile.open(a, { progress = function(...) reports[#reports + 1] = { ... } end }))
    assert.equal(0, #reports)
    db:close()
  end)

  it("re-raises an error of the progress function after the open has finished", function()
    local db = assert(dynafile.open(a, { sync = "off" }))
    fill(db, 100)
    db:close()
    local ok, err = pcall(dynafile.open, a,
      { gsi = { by_grp = GSI.by_grp }, progress = function() error("stop here") end })
    assert.is_false(ok)
    assert.matches("stop here", err)
    db = assert(dynafile.open(a))
    assert.is_not_nil(db:schema().indexes.by_grp)
    backend.assert_checked(db)
    db:close()
  end)

  it("grows the map when the new index does not fit in it", function()
    -- a small map that grows with the items, keeping about a quarter free
    local db = assert(dynafile.open(a, { sync = "off", map_size = 1048576 }))
    for batch = 0, 7 do
      db:batch_write(function(w)
        for i = batch * 500 + 1, batch * 500 + 500 do
          w:put_item { PK = "p" .. i, SK = 0, grp = "g" .. (i % 3), pad = string.rep("x", 1500) }
        end
      end)
    end
    local map = db:stat().map_size
    db:close()
    -- a copy of every item, three times, does not fit in the map as the
    -- load left it (pages it freed included)
    db = assert(dynafile.open(a, { map_size = 65536, gsi = {
      big = { pk = "grp", projection = "all" },
      big2 = { pk = "grp", sk = "PK", projection = "all" },
      big3 = { pk = "PK", projection = "all" },
    } }))
    assert.is_true(db:stat().map_size > map)
    local n = 0
    for _ in db:query("g1", { index = "big" }) do n = n + 1 end
    assert.equal(1334, n)
    backend.assert_checked(db)
    db:close()
  end)

  it("leaves the database as it was when an item cannot enter the new index", function()
    local db = assert(dynafile.open(a, { sync = "off" }))
    fill(db, 200)
    db:put_item { PK = "bad", SK = 0, grp = "g1", rank = string.rep("r", 1025) }
    db:close()
    local h, msg, code = dynafile.open(a, { gsi = { by_grp = GSI.by_grp } })
    assert.is_nil(h)
    assert.equal("ValidationError", code)
    assert.matches("rank", msg)
    assert.matches("index by_grp", msg)
    db = assert(dynafile.open(a))
    assert.is_nil(db:schema().indexes.by_grp)
    backend.assert_counts(db, { index_entries = 0 })
    db:close()
  end)

  it("rebuilds projected entries when a TTL attribute is added later", function()
    -- times near the present: a server deleting expired items by its own
    -- clock keeps them
    local t0 = os.time()
    local now = t0 + 1000
    local db = assert(dynafile.open(a, { gsi = { by_color = GSI.by_color } }))
    db:put_item { PK = "x", SK = 1, color = "red", exp = t0 + 1500 }
    db:put_item { PK = "y", SK = 1, color = "red", exp = t0 + 9000 }
    db:close()
    db = assert(dynafile.open(a, { ttl = "exp", clock = function() return now end }))
    now = t0 + 2000
    local got = {}
    for it in db:query("red", { index = "by_color" }) do got[#got + 1] = it.PK end
    assert.same({ "y" }, got)
    db:close()
  end)
end)
