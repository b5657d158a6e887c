-- update_item: tables of changes, update functions, upserts, key rules.
local dynafile = require "dynafile"

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  return p
end

local function rmdir(p)
  os.execute("rm -rf '" .. p .. "'")
end

local K = { PK = "u", SK = 1 }
local array_mt = getmetatable(dynafile.array {})

describe("update_item", function()
  local dir, db

  before_each(function()
    dir = tmpdir()
    db = assert(dynafile.open(dir, { pk = "PK", sk = "SK" }))
  end)

  after_each(function()
    db:close()
    rmdir(dir)
  end)

  local function get() return db:get_item(K) end

  describe("with a table of changes", function()
    it("sets top-level and nested attributes, creating missing maps on the way", function()
      db:put_item { PK = "u", SK = 1, a = 1, m = { x = 1 } }
      local new = db:update_item(K, { set = { a = 2, ["m.y"] = 3, ["p.q.r.s"] = "deep" } })
      local item = get()
      assert.same(item, new)
      assert.equal(2, item.a)
      assert.same({ x = 1, y = 3 }, item.m)
      assert.same({ q = { r = { s = "deep" } } }, item.p)
    end)

    it("sets list positions, appending when the position is past the end, in order", function()
      db:put_item { PK = "u", SK = 1, l = { "a", "b", "c" }, m = { l = { { x = 1 }, { x = 2 } } } }
      db:update_item(K, { set = { ["l[1]"] = "B", ["l[7]"] = "e", ["l[5]"] = "d",
        ["m.l[1].x"] = 20, ["m.l[0].y"] = 10 } })
      local item = get()
      assert.same({ "a", "B", "c", "d", "e" }, item.l)
      assert.same({ { x = 1, y = 10 }, { x = 20 } }, item.m.l)
    end)

    it("refuses a path through a value of another kind, leaving the item as it was", function()
      db:put_item { PK = "u", SK = 1, n = 5, l = { 1 }, m = { k = 1 } }
      local before = get()
      for _, set in ipairs {
        { ["n.x"] = 1 }, { ["m[0]"] = 1 }, { ["l.x"] = 1 }, { ["missing[0]"] = 1 },
        { ["l[3].x"] = 1 }, { a = 1, ["n[2]"] = 1 },
      } do
        local ok, msg, code = db:update_item(K, { set = set })
        assert.is_nil(ok)
        assert.equal("ValidationError", code)
        assert.matches("^dynafile.update_item: changes.set", msg)
        assert.same(before, get())
      end
    end)

    it("removes attributes, nested attributes and missing ones without complaint", function()
      db:put_item { PK = "u", SK = 1, a = 1, b = 2, m = { x = 1, y = 2 } }
      db:update_item(K, { remove = { "a", "m.x", "nothing", "no.such.path" } })
      local item = get()
      assert.is_nil(item.a)
      assert.equal(2, item.b)
      assert.same({ y = 2 }, item.m)
    end)

    it("removes list positions as numbered in the old item, whatever their order", function()
      local l = {}
      for i = 0, 11 do l[#l + 1] = "e" .. i end
      db:put_item { PK = "u", SK = 1, l = l, n = { { 0, 1, 2 }, { 0, 1, 2 } } }
      -- as strings "l[2]" > "l[1]" > "l[10]": a sort by path text removes
      -- the wrong elements
      db:update_item(K, { remove = { "l[2]", "l[10]", "l[1]", "l[11]", "l[40]",
        "n[1][0]", "n[0][2]", "n[0][0]" } })
      local item = get()
      assert.same({ "e0", "e3", "e4", "e5", "e6", "e7", "e8", "e9" }, item.l)
      assert.same({ { 1 }, { 1, 2 } }, item.n)
    end)

    it("keeps a list a list when its last element is removed", function()
      db:put_item { PK = "u", SK = 1, l = { 1 }, d = { "x", "x" } }
      db:update_item(K, { remove = { "l[0]" }, delete = { d = { "x" } } })
      local item = get()
      assert.same({}, item.l)
      assert.equal(array_mt, getmetatable(item.l))
      assert.equal(array_mt, getmetatable(item.d))
    end)

    it("adds to numbers and sets missing attributes", function()
      db:put_item { PK = "u", SK = 1, n = 10, f = 1.5, m = {} }
      db:update_item(K, { add = { n = 5, f = 1, new = 3, ["m.c"] = 1, ["x.y"] = 2 } })
      local item = get()
      assert.equal(15, item.n)
      assert.equal(2.5, item.f)
      assert.equal(3, item.new)
      assert.equal(1, item.m.c)
      assert.equal(2, item.x.y)
      db:update_item(K, { add = { n = -20 } })
      assert.equal(-5, get().n)
    end)

    it("adds a list's missing values to a list", function()
      db:put_item { PK = "u", SK = 1, tags = { "a", "b" } }
      db:update_item(K, { add = { tags = { "b", "c" }, fresh = { 1, 2 } } })
      local item = get()
      assert.same({ "a", "b", "c" }, item.tags)
      assert.same({ 1, 2 }, item.fresh)
    end)

    it("refuses an integer sum that does not fit, leaving the item as it was", function()
      if math.maxinteger then
        db:put_item { PK = "u", SK = 1, n = math.maxinteger - 1, m = math.mininteger + 1 }
        local ok, msg, code = db:update_item(K, { add = { n = 2 } })
        assert.is_nil(ok)
        assert.equal("ValidationError", code)
        assert.matches("overflows a 64-bit integer", msg, 1, true)
        assert.is_nil((db:update_item(K, { add = { m = -2 } })))
        assert.equal(math.maxinteger, db:update_item(K, { add = { n = 1 } }).n)
        assert.equal(math.mininteger + 1, get().m)
      else
        -- the sum is computed in C on the stored 64-bit integers, exactly,
        -- whatever this Lua's numbers can hold
        db:put_item { PK = "u", SK = 1, n = 2 ^ 53 - 1 }
        assert.equal(2 ^ 53, db:update_item(K, { add = { n = 1 } }).n)
        assert.equal(2 ^ 53, get().n)
      end
    end)

    it("refuses to add to a string or a number to a list", function()
      db:put_item { PK = "u", SK = 1, s = "x", l = { 1 } }
      local ok, msg, code = db:update_item(K, { add = { s = 1 } })
      assert.is_nil(ok)
      assert.equal("ValidationError", code)
      assert.matches("holds a string, not a number", msg, 1, true)
      assert.equal("ValidationError", select(3, db:update_item(K, { add = { l = 1 } })))
      assert.equal("ValidationError", select(3, db:update_item(K, { add = { s = { 1 } } })))
      assert.same({ PK = "u", SK = 1, s = "x", l = { 1 } }, get())
    end)

    it("deletes values from lists and ignores missing lists", function()
      db:put_item { PK = "u", SK = 1, l = { 1, 2, 3, 2, 1, "x" }, m = { l = { "a", "b" } } }
      db:update_item(K, { delete = { l = { 2, "x", 9 }, ["m.l"] = { "a" }, gone = { 1 } } })
      local item = get()
      assert.same({ 1, 3, 1 }, item.l)
      assert.same({ "b" }, item.m.l)
      assert.is_nil(item.gone)
      local ok, _, code = db:update_item(K, { delete = { PK2 = { 1 }, m = { 1 } } })
      assert.is_nil(ok)
      assert.equal("ValidationError", code)
    end)

    it("creates the item when it is missing (upsert)", function()
      local new = db:update_item({ PK = "new", SK = 7 }, { set = { a = 1 }, add = { n = 2 } })
      assert.same({ PK = "new", SK = 7, a = 1, n = 2 }, new)
      assert.same(new, db:get_item { PK = "new", SK = 7 })
    end)

    it("applies set, remove, add and delete together", function()
      db:put_item { PK = "u", SK = 1, a = 1, b = 2, n = 1, l = { 1, 2 } }
      local new = db:update_item(K, { set = { a = "A" }, remove = { "b" }, add = { n = 1 },
        delete = { l = { 1 } } })
      assert.same({ PK = "u", SK = 1, a = "A", n = 2, l = { 2 } }, new)
    end)

    it("returns the old item, untouched by the update, with return_old", function()
      db:put_item { PK = "u", SK = 1, n = 1, m = { x = 1 } }
      local new, old = db:update_item(K, { add = { n = 1 }, set = { ["m.x"] = 2 } },
        { return_old = true })
      assert.same({ PK = "u", SK = 1, n = 1, m = { x = 1 } }, old)
      assert.same({ PK = "u", SK = 1, n = 2, m = { x = 2 } }, new)
      local new2, none = db:update_item({ PK = "v", SK = 1 }, { set = { a = 1 } },
        { return_old = true })
      assert.is_not_nil(new2)
      assert.is_nil(none)
    end)
  end)

  describe("refuses misuse with a clear error", function()
    it("when a change names a key attribute", function()
      db:put_item { PK = "u", SK = 1 }
      for _, ch in ipairs {
        { set = { PK = "x" } }, { set = { SK = 2 } }, { remove = { "SK" } },
        { add = { SK = 1 } }, { delete = { PK = { "u" } } }, { set = { ["PK.x"] = 1 } },
        { remove = { "SK[0]" } },
      } do
        assert.has_error(function() db:update_item(K, ch) end)
        local ok, err = pcall(db.update_item, db, K, ch)
        assert.is_false(ok)
        assert.matches("dynafile.update_item: .*cannot change key attribute [PS]K", err)
      end
      assert.same({ PK = "u", SK = 1 }, get())
    end)

    it("when paths overlap or repeat", function()
      assert.has_error(function() db:update_item(K, { set = { m = {}, ["m.x"] = 1 } }) end)
      assert.has_error(function()
        db:update_item(K, { set = { ["l[0]"] = 1 }, remove = { "l" } })
      end)
      assert.has_error(function() db:update_item(K, { set = { a = 1 }, remove = { "a" } }) end)
      assert.has_error(function()
        db:update_item(K, { set = { ["l[00]"] = 1 }, add = { ["l[0]"] = 1 } })
      end)
      local ok, err = pcall(db.update_item, db, K, { add = { n = 1 }, remove = { "n.x" } })
      assert.is_false(ok)
      assert.matches("paths overlap ('n.x' lies inside 'n')", err, 1, true)
      assert.is_nil(get())
    end)

    it("when a path or a change is malformed", function()
      for _, ch in ipairs {
        { set = { ["a..b"] = 1 } }, { set = { ["a."] = 1 } }, { set = { ["[0]"] = 1 } },
        { set = { ["a[x]"] = 1 } }, { set = { ["a[0]b"] = 1 } }, { set = { [""] = 1 } },
        { remove = "a" }, { remove = { a = "b" } }, { remove = { 1 } }, { sett = {} },
        { add = { n = "1" } }, { delete = { l = 1 } }, { set = { [1] = 1 } },
      } do
        assert.has_error(function() db:update_item(K, ch) end)
      end
      assert.has_error(function() db:update_item(K, 42) end,
        "dynafile.update_item: changes must be a table or a function, got number")
      assert.has_error(function() db:update_item({ PK = "u" }, {}) end)
      assert.has_error(function() db:update_item(K, {}, { nope = true }) end,
        "dynafile.update_item: unknown option 'nope'")
      assert.is_nil(get())
    end)
  end)

  describe("with a function", function()
    it("receives the old item or nil and stores what it returns", function()
      local seen = {}
      local function bump(old)
        seen[#seen + 1] = old and old.n or "none"
        local item = old or { PK = "u", SK = 1, n = 0 }
        item.n = item.n + 1
        return item
      end
      db:update_item(K, bump)
      local new = db:update_item(K, bump)
      assert.same({ "none", 1 }, seen)
      assert.same({ PK = "u", SK = 1, n = 2 }, new)
      assert.same(new, get())
    end)

    it("fills in key attributes the new item leaves out", function()
      local new = db:update_item(K, function() return { n = 1 } end)
      assert.same({ PK = "u", SK = 1, n = 1 }, new)
      assert.same(new, get())
    end)

    it("leaves the item as it was when the function raises, and raises the error", function()
      db:put_item { PK = "u", SK = 1, n = 1 }
      local ok, err = pcall(db.update_item, db, K, function(old)
        old.n = 99
        error("no thanks", 0)
      end)
      assert.is_false(ok)
      assert.equal("no thanks", err)
      assert.same({ PK = "u", SK = 1, n = 1 }, get())
    end)

    it("refuses a function that changes a key attribute or returns no item", function()
      db:put_item { PK = "u", SK = 1, n = 1 }
      local ok, err = pcall(db.update_item, db, K, function(old)
        old.SK = 2
        return old
      end)
      assert.is_false(ok)
      assert.matches("dynafile.update_item: the update function may not change key attribute SK",
        err, 1, true)
      assert.has_error(function() db:update_item(K, function() end) end,
        "dynafile.update_item: the update function must return the new item (a table), got nil")
      assert.same({ PK = "u", SK = 1, n = 1 }, get())
      assert.is_nil(db:get_item { PK = "u", SK = 2 })
    end)

    it("may read the database but a write from it raises instead of waiting", function()
      db:put_item { PK = "other", SK = 1, v = 5 }
      local new = db:update_item(K, function()
        return { v = db:get_item { PK = "other", SK = 1 }.v + 1 }
      end)
      assert.equal(6, new.v)
      local ok, err = pcall(db.update_item, db, K, function(old)
        db:put_item { PK = "other", SK = 1, v = 0 }
        return old
      end)
      assert.is_false(ok)
      assert.matches("dynafile.put_item: the write transaction of this database is held", err,
        1, true)
      assert.equal(5, db:get_item { PK = "other", SK = 1 }.v)
      assert.equal(6, get().v)
    end)

    it("returns the old item as it was with return_old, even if the function changed it", function()
      db:put_item { PK = "u", SK = 1, n = 1 }
      local new, old = db:update_item(K, function(o)
        o.n = o.n + 1
        return o
      end, { return_old = true })
      assert.equal(2, new.n)
      assert.equal(1, old.n)
    end)
  end)

  it("checks a condition before changing anything", function()
    db:put_item { PK = "u", SK = 1, n = 1 }
    local ok, msg, code = db:update_item(K, { add = { n = 1 } }, { condition = "n > 1" })
    assert.is_nil(ok)
    assert.equal("ConditionalCheckFailed", code)
    assert.equal("dynafile.update_item: the condition failed", msg)
    assert.equal(2, db:update_item(K, { add = { n = 1 } }, { condition = "n == 1" }).n)
    assert.equal(3, db:update_item(K, { add = { n = 1 } }, {
      condition = function(old) return old.n == 2 end }).n)
    assert.equal("ConditionalCheckFailed", select(3, db:update_item({ PK = "x", SK = 1 },
      { set = { a = 1 } }, { condition = "exists(PK)" })))
    assert.is_nil(db:get_item { PK = "x", SK = 1 })
  end)
end)
