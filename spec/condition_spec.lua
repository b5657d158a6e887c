-- Conditional writes: condition functions and expression strings on
-- put_item, delete_item and update_item, and return_old.
local dynafile = require "dynafile"

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  return p
end

local function rmdir(p)
  os.execute("rm -rf '" .. p .. "'")
end

local K = { PK = "c", SK = 1 }

describe("a conditional write", function()
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

  it("passes the current item, or nil, to a condition function", function()
    local seen = {}
    local function cond(old)
      seen[#seen + 1] = old and old.v or "none"
      return true
    end
    assert.is_true(db:put_item({ PK = "c", SK = 1, v = 1 }, { condition = cond }))
    assert.is_true(db:put_item({ PK = "c", SK = 1, v = 2 }, { condition = cond }))
    assert.is_true(db:delete_item(K, { condition = cond }))
    assert.same({ "none", 1, 2 }, seen)
  end)

  it("writes nothing and returns ConditionalCheckFailed when a function says no", function()
    db:put_item { PK = "c", SK = 1, v = 1 }
    local no = function() return false end
    local ok, msg, code = db:put_item({ PK = "c", SK = 1, v = 2 }, { condition = no })
    assert.is_nil(ok)
    assert.equal("dynafile.put_item: the condition failed", msg)
    assert.equal("ConditionalCheckFailed", code)
    ok, msg, code = db:delete_item(K, { condition = no })
    assert.is_nil(ok)
    assert.equal("dynafile.delete_item: the condition failed", msg)
    assert.equal("ConditionalCheckFailed", code)
    assert.equal(1, get().v)
  end)

  it("evaluates expression strings against the current item", function()
    assert.is_true(db:put_item({ PK = "c", SK = 1, v = 1, name = "alpha" },
      { condition = "not exists(PK)" }))
    assert.equal("ConditionalCheckFailed",
      select(3, db:put_item({ PK = "c", SK = 1, v = 9 }, { condition = "not exists(PK)" })))
    assert.is_true(db:put_item({ PK = "c", SK = 1, v = 2, name = "alpha" },
      { condition = "v == 1 and begins_with(name, \"al\")" }))
    assert.equal("ConditionalCheckFailed",
      select(3, db:put_item({ PK = "c", SK = 1, v = 3 }, { condition = "v > 5" })))
    assert.equal("ConditionalCheckFailed",
      select(3, db:delete_item(K, { condition = "v < 2" })))
    assert.equal(2, get().v)
    assert.is_true(db:delete_item(K, { condition = "v >= 2" }))
    assert.is_nil(get())
  end)

  it("sees every attribute missing when the item is absent", function()
    assert.equal("ConditionalCheckFailed",
      select(3, db:delete_item(K, { condition = "exists(PK)" })))
    assert.equal("ConditionalCheckFailed",
      select(3, db:put_item({ PK = "c", SK = 1 }, { condition = "v == 1" })))
    assert.is_true(db:put_item({ PK = "c", SK = 1 }, { condition = "not exists(v)" }))
  end)

  it("returns ValidationError for a condition string that does not parse", function()
    local ok, msg, code = db:put_item({ PK = "c", SK = 1 }, { condition = "v ==" })
    assert.is_nil(ok)
    assert.equal("ValidationError", code)
    assert.matches("^dynafile.put_item: condition: ", msg)
    assert.equal("ValidationError", select(3, db:delete_item(K, { condition = "((" })))
    assert.equal("ValidationError",
      select(3, db:update_item(K, { set = { a = 1 } }, { condition = "a = = 1" })))
    assert.is_nil(get())
  end)

  it("raises on a condition that is neither a function nor a string", function()
    assert.has_error(function() db:put_item({ PK = "c", SK = 1 }, { condition = 1 }) end,
      "dynafile.put_item: condition must be a function, an expression string or a "
      .. "dynafile.expr, got number")
    assert.has_error(function() db:delete_item(K, { condition = true }) end)
    assert.has_error(function() db:put_item({ PK = "c", SK = 1 }, { when = "x" }) end,
      "dynafile.put_item: unknown option 'when'")
  end)

  it("leaves the item as it was when a condition function raises", function()
    db:put_item { PK = "c", SK = 1, v = 1 }
    local ok, err = pcall(db.put_item, db, { PK = "c", SK = 1, v = 2 }, {
      condition = function() error("cannot tell", 0) end })
    assert.is_false(ok)
    assert.equal("cannot tell", err)
    assert.equal(1, get().v)
  end)

  it("raises instead of waiting when a condition function writes", function()
    local ok, err = pcall(db.put_item, db, { PK = "c", SK = 1, v = 2 }, {
      condition = function()
        db:delete_item { PK = "x", SK = 1 }
        return true
      end })
    assert.is_false(ok)
    assert.matches("dynafile.delete_item: the write transaction of this database is held", err,
      1, true)
    assert.is_nil(get())
  end)

  it("lets a condition function read the database", function()
    db:put_item { PK = "flag", SK = 0, on = true }
    assert.is_true(db:put_item({ PK = "c", SK = 1 }, {
      condition = function() return db:get_item { PK = "flag", SK = 0 }.on end }))
    assert.is_not_nil(get())
  end)

  describe("with return_old", function()
    it("returns the replaced item from put_item, nil when there was none", function()
      local ok, old = db:put_item({ PK = "c", SK = 1, v = 1 }, { return_old = true })
      assert.is_true(ok)
      assert.is_nil(old)
      ok, old = db:put_item({ PK = "c", SK = 1, v = 2 }, { return_old = true })
      assert.is_true(ok)
      assert.same({ PK = "c", SK = 1, v = 1 }, old)
    end)

    it("returns the deleted item from delete_item, nil when there was none", function()
      db:put_item { PK = "c", SK = 1, v = 1 }
      local ok, old = db:delete_item(K, { return_old = true, condition = "v == 1" })
      assert.is_true(ok)
      assert.same({ PK = "c", SK = 1, v = 1 }, old)
      ok, old = db:delete_item(K, { return_old = true })
      assert.is_true(ok)
      assert.is_nil(old)
    end)

    it("returns only true without it", function()
      db:put_item { PK = "c", SK = 1, v = 1 }
      assert.equal(1, select("#",
        db:put_item({ PK = "c", SK = 1, v = 2 }, { condition = "v == 1" })))
      assert.equal(1, select("#", db:put_item { PK = "c", SK = 1, v = 3 }))
      assert.equal(1, select("#", db:delete_item(K)))
    end)
  end)
end)
