-- Item views: what a Lua filter function receives.  A view is a read-only
-- userdata over the stored bytes of one item, valid during the call it was
-- made for; indexing it decodes only what is touched, and an item the
-- filter accepts is handed to the loop as a real table.
local dynafile = require "dynafile"
local fs = dofile("spec/support/fs.lua")

local unpack = table.unpack or unpack -- luacheck: ignore (Lua 5.1)
-- pairs() honours __pairs on Lua 5.2+ (and LuaJIT built with 5.2 extensions)
local HAS_PAIRS_MM = (function()
  local honoured = false
  for _ in pairs(setmetatable({}, { __pairs = function()
    honoured = true
    return next, {}, nil
  end })) do end
  return honoured
end)()
-- ipairs() honours __index on Lua 5.3+
local IPAIRS_INDEX = _VERSION == "Lua 5.3" or _VERSION == "Lua 5.4"

describe("item views in filters", function()
  local dir, db

  local item = {
    PK = "p", SK = "a", name = "Ada", age = 36, height = 1.65, admin = true,
    banned = false, nothing = dynafile.null, empty = "",
    tags = { "red", "green", "blue" },
    data = { count = 3, inner = { deep = "yes", list = { 10, 20, { x = "y" } } } },
    none = dynafile.array {}, nomap = {}, ["odd name"] = 7, ["1"] = "one",
  }

  before_each(function()
    dir = fs.tmpdir()
    db = assert(dynafile.open(dir, { pk = "PK", sk = "SK" }))
    assert(db:put_item(item))
    assert(db:put_item({ PK = "p", SK = "b", name = "Bob", age = 7, tags = { "x" } }))
    assert(db:put_item({ PK = "p", SK = "c", name = "Cy", age = 50 }))
  end)

  after_each(function()
    db:close()
    fs.cleanup()
  end)

  -- Run fn(view) on item "a" as a query filter; return what fn returned.
  local function on_view(fn)
    local got, n = {}, 0
    for _ in db:query("p", { eq = "a", filter = function(v)
      n = n + 1
      got = { fn(v) }
      return false
    end }) do end
    assert.equal(1, n)
    return unpack(got, 1, 10)
  end

  it("is a userdata, not a table", function()
    assert.equal("userdata", on_view(function(v) return type(v) end))
  end)

  it("gives scalar attributes as the Lua values a decoded item holds", function()
    local name, age, height, admin, banned, nothing, empty, odd, one = on_view(function(v)
      return v.name, v.age, v.height, v.admin, v.banned, v.nothing, v.empty, v["odd name"],
        v["1"]
    end)
    assert.equal("Ada", name)
    assert.equal(36, age)
    assert.equal(1.65, height)
    assert.is_true(admin)
    assert.is_false(banned)
    assert.equal(dynafile.null, nothing)
    assert.equal("", empty)
    assert.equal(7, odd)
    assert.equal("one", one)
    if math.type then
      assert.equal("integer", on_view(function(v) return math.type(v.age) end))
      assert.equal("float", on_view(function(v) return math.type(v.height) end))
    end
  end)

  it("gives nil for a missing attribute and for keys no map can hold", function()
    local a, b, c, d = on_view(function(v) return v.missing, v[1], v[true], v[0.5] end)
    assert.is_nil(a)
    assert.is_nil(b)
    assert.is_nil(c)
    assert.is_nil(d)
  end)

  it("reaches into nested maps and lists, with list positions from 1", function()
    local count, deep, second, x, first, last = on_view(function(v)
      return v.data.count, v.data.inner.deep, v.data.inner.list[2], v.data.inner.list[3].x,
        v.tags[1], v.tags[3]
    end)
    assert.equal(3, count)
    assert.equal("yes", deep)
    assert.equal(20, second)
    assert.equal("y", x)
    assert.equal("red", first)
    assert.equal("blue", last)
  end)

  it("gives nil for list positions out of range and non-integer list keys", function()
    local a, b, c, d, e = on_view(function(v)
      return v.tags[0], v.tags[4], v.tags[-1], v.tags[1.5], v.tags.name
    end)
    assert.is_nil(a)
    assert.is_nil(b)
    assert.is_nil(c)
    assert.is_nil(d)
    assert.is_nil(e)
  end)

  it("gives maps and lists as views, empty ones included", function()
    local t1, t2, t3, t4 = on_view(function(v)
      return type(v.tags), type(v.data), type(v.none), type(v.nomap)
    end)
    assert.same({ "userdata", "userdata", "userdata", "userdata" }, { t1, t2, t3, t4 })
  end)

  it("has the length of a list with #, and 0 for a map (as a table would)", function()
    local tags, list, none, map, nomap = on_view(function(v)
      return #v.tags, #v.data.inner.list, #v.none, #v, #v.nomap
    end)
    assert.same({ 3, 3, 0, 0, 0 }, { tags, list, none, map, nomap })
  end)

  it("compares scalars as plain values", function()
    local r = { on_view(function(v)
      return v.age > 30, v.age == 36, v.name == "Ada", v.name < "B", v.height <= 2,
        v.nothing == dynafile.null
    end) }
    assert.same({ true, true, true, true, true, true }, r)
  end)

  it("compares views of the same value in the same call as equal", function()
    local same, other = on_view(function(v) return v.tags == v.tags, v.tags == v.data end)
    assert.is_true(same)
    assert.is_false(other)
  end)

  it("names itself with tostring", function()
    local a, b = on_view(function(v) return tostring(v), tostring(v.tags) end)
    assert.matches("^dynafile%.view: map of 15 attributes", a)
    assert.matches("^dynafile%.view: list of 3 elements", b)
  end)

  it("iterates with dynafile.pairs on every Lua version, in stored order", function()
    local keys, tags = on_view(function(v)
      local ks = {}
      for k, x in dynafile.pairs(v) do
        ks[#ks + 1] = k
        if k == "age" then assert.equal(36, x) end
      end
      local ts = {}
      for i, x in dynafile.pairs(v.tags) do ts[i] = x end
      return ks, ts
    end)
    table.sort(keys)
    local want = {}
    for k in pairs(item) do want[#want + 1] = k end
    table.sort(want)
    assert.same(want, keys)
    assert.same({ "red", "green", "blue" }, tags)
  end)

  it("iterates with pairs where Lua honours __pairs", function()
    if not HAS_PAIRS_MM then
      -- Lua 5.1 and LuaJIT without 5.2 extensions: pairs wants a table
      assert.has_error(function() on_view(function(v) return pairs(v) end) end)
      return
    end
    local n, tags = on_view(function(v)
      local c = 0
      for _ in pairs(v) do c = c + 1 end
      local ts = {}
      for i, x in pairs(v.tags) do ts[i] = x end
      return c, ts
    end)
    assert.equal(15, n)
    assert.same({ "red", "green", "blue" }, tags)
  end)

  it("iterates a list with ipairs on Lua 5.3 and 5.4", function()
    if not IPAIRS_INDEX then return end
    local tags = on_view(function(v)
      local ts = {}
      for i, x in ipairs(v.tags) do ts[i] = x end
      return ts
    end)
    assert.same({ "red", "green", "blue" }, tags)
  end)

  it("copies into a real table with dynafile.totable", function()
    local whole, tags, plain = on_view(function(v)
      return dynafile.totable(v), dynafile.totable(v.tags), dynafile.totable(5)
    end)
    assert.same(db:get_item({ PK = "p", SK = "a" }), whole)
    assert.same({ "red", "green", "blue" }, tags)
    assert.equal(5, plain)
    assert.equal("table", type(whole.data.inner))
  end)

  it("tells dynafile.type a map from a list", function()
    if not dynafile.type then return end
    local m, l = on_view(function(v) return dynafile.type(v), dynafile.type(v.tags) end)
    assert.equal("M", m)
    assert.equal("L", l)
  end)

  it("refuses assignment, naming the call and the attribute", function()
    local ok, err = pcall(function()
      for _ in db:scan({ filter = function(v) v.age = 1; return true end }) do end
    end)
    assert.is_false(ok)
    assert.matches("dynafile%.scan: filter: .*read%-only.*age", tostring(err))
    ok, err = pcall(function()
      for _ in db:scan({ filter = function(v) v.tags[1] = "x"; return true end }) do end
    end)
    assert.is_false(ok)
    assert.matches("read%-only", tostring(err))
    -- nothing was written
    assert.same({ "red", "green", "blue" }, db:get_item({ PK = "p", SK = "a" }).tags)
  end)

  it("refuses a view used after its call returned", function()
    local kept, kept_tags
    for _ in db:query("p", { filter = function(v)
      kept = kept or v
      kept_tags = kept_tags or v.tags
      return true
    end }) do end
    local ok, err = pcall(function() return kept.name end)
    assert.is_false(ok)
    assert.matches("dynafile%.query: filter: .*used after", tostring(err))
    assert.has_error(function() return kept_tags[1] end)
    assert.has_error(function() return #kept_tags end)
    assert.has_error(function() return tostring(kept) end)
    assert.has_error(function() return dynafile.totable(kept) end)
    assert.has_error(function() for _ in dynafile.pairs(kept) do end end)
  end)

  it("refuses a view kept from one item and used while filtering the next", function()
    local first, seen = nil, {}
    local ok, err = pcall(function()
      for _ in db:query("p", { filter = function(v)
        if first then seen[#seen + 1] = first.name end
        first = first or v
        return true
      end }) do end
    end)
    assert.is_false(ok)
    assert.matches("used after", tostring(err))
    assert.same({}, seen)
  end)

  it("refuses a view used in the loop body after its filter accepted the item", function()
    local kept
    local next_item = db:query("p", { filter = function(v) kept = v; return true end })
    assert.equal("table", type(next_item()))
    local ok, err = pcall(function() return kept.name end)
    assert.is_false(ok)
    assert.matches("used after", tostring(err))
  end)

  it("refuses a view kept past a filter that raised", function()
    local kept
    local ok = pcall(function()
      for _ in db:scan({ filter = function(v) kept = v; error("boom") end }) do end
    end)
    assert.is_false(ok)
    assert.has_error(function() return kept.name end)
  end)

  it("lets a filter yield in a coroutine, where Lua yields across pcall", function()
    local probe = coroutine.create(function() pcall(coroutine.yield) end)
    if not coroutine.resume(probe) or coroutine.status(probe) ~= "suspended" then
      return -- Lua 5.1: no yield across pcall
    end
    local co = coroutine.create(function()
      local got = {}
      for it in db:query("p", { filter = function(v)
        coroutine.yield(v.name)
        return v.age > 30 -- the view still reads after the resume
      end }) do got[#got + 1] = it.SK end
      return got
    end)
    local yielded = {}
    while true do
      local ok, x = coroutine.resume(co)
      assert.is_true(ok, tostring(x))
      if coroutine.status(co) == "dead" then
        assert.same({ "a", "c" }, x)
        break
      end
      yielded[#yielded + 1] = x
      -- meanwhile other reads, with filters of their own, on the same handle
      assert.equal("Bob", db:get_item({ PK = "p", SK = "b" }).name)
      local n = 0
      for _ in db:query("p", { filter = function(v) return v.age == 7 end }) do n = n + 1 end
      assert.equal(1, n)
    end
    assert.same({ "Ada", "Bob", "Cy" }, yielded)
  end)

  it("runs a filter that reads other items, with filters, on the same handle", function()
    local inner = 0
    local n = 0
    for _ in db:query("p", { filter = function(v)
      for _ in db:scan({ filter = function(w) return w.age == v.age end }) do inner = inner + 1 end
      return v.name ~= "Bob"
    end }) do n = n + 1 end
    assert.equal(2, n)
    assert.equal(3, inner)
  end)

  it("hands accepted items to the loop as real tables, equal to the stored items", function()
    local got = {}
    for it in db:query("p", { filter = function(v) return v.age > 30 end }) do
      got[#got + 1] = it
    end
    assert.equal(2, #got)
    assert.same(db:get_item({ PK = "p", SK = "a" }), got[1])
    assert.same({ PK = "p", SK = "c", name = "Cy", age = 50 }, got[2])
    got[1].age = 1 -- a plain table: the caller may change it
    assert.equal(1, got[1].age)
  end)

  it("gives views in scans, pages and index queries too", function()
    db:close()
    db = assert(dynafile.open(dir, { gsi = { by_name = { pk = "name" } } }))
    local kinds = {}
    local function f(v) kinds[#kinds + 1] = type(v); return v.age == 7 end
    local n = 0
    for _ in db:scan({ filter = f }) do n = n + 1 end
    local page = db:scan_page({ filter = f })
    local qpage = db:query_page("p", { filter = f })
    local ipage = db:query_page("Bob", { index = "by_name", filter = f })
    assert.equal(1, n)
    assert.equal(1, #page)
    assert.equal(1, #qpage)
    assert.equal(1, #ipage)
    for _, k in ipairs(kinds) do assert.equal("userdata", k) end
  end)

  it("counts only the accepted items as decoded", function()
    local stats = {}
    for _ in db:query("p", { filter = function(v) return v.age > 40 end, stats = stats }) do end
    assert.equal(3, stats.examined)
    assert.equal(1, stats.decoded)
  end)

  it("keeps a rejected item from allocating a decoded copy", function()
    -- 2,000 items with a large attribute, all rejected: the heap grows by a
    -- small view per item at most, never by the items
    local big = string.rep("x", 2000)
    db:batch_write(function(w)
      for i = 1, 2000 do w:put_item({ PK = "big", SK = i, blob = big, n = i }) end
    end)
    collectgarbage("collect")
    collectgarbage("stop")
    local before = collectgarbage("count")
    for _ in db:query("big", { filter = function(v) return v.n < 0 end }) do end
    local grown = collectgarbage("count") - before
    collectgarbage("restart")
    -- decoded copies would take over 4 MB
    assert.is_true(grown < 1024, "heap grew by " .. grown .. " KB")
  end)
end)
