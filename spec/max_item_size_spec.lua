-- The open option max_item_size: the largest item a handle writes, counted
-- as DynamoDB counts item sizes; every write path refuses a larger item
-- with a ValidationError and leaves the database as it was.  Without the
-- option there is no fixed limit.
local dynafile = require "dynafile"
local support = dofile("spec/support/fs.lua")

describe("max_item_size", function()
  local dir
  before_each(function() dir = support.tmpdir() end)
  after_each(function() support.cleanup() end)

  local function open(limit)
    return assert(dynafile.open(dir, { pk = "PK", sk = "SK", sync = "off", max_item_size = limit }))
  end

  it("is checked as a positive integer, naming the function and the option", function()
    for _, bad in ipairs { 0, -1, 1.5, "100", true, math.huge } do
      assert.has_error(function() dynafile.open(dir, { max_item_size = bad }) end,
        "dynafile.open: max_item_size must be a positive integer")
    end
  end)

  it("counts names and values as DynamoDB does, the limit itself allowed", function()
    local db = open(100)
    -- PK(2) + "a"(1) + SK(2) + "b"(1) + v(1) + 93 bytes = 100
    assert.is_true(db:put_item { PK = "a", SK = "b", v = ("x"):rep(93) })
    local ok, err = pcall(db.put_item, db, { PK = "a", SK = "c", v = ("x"):rep(94) })
    assert.is_false(ok)
    assert.matches("^dynafile.put_item: Item size has exceeded the maximum allowed size " ..
      "%(101 bytes as DynamoDB counts them; this handle allows 100%)", err)
    assert.is_nil(db:get_item { PK = "a", SK = "c" })
    -- binary values count their bytes, numbers about one byte per two digits
    assert.has_error(function()
      db:put_item { PK = "a", SK = "d", v = dynafile.binary(("x"):rep(94)) }
    end)
    assert.is_true(db:put_item { PK = "a", SK = "d", v = dynafile.binary(("x"):rep(93)) })
    db:close()
  end)

  it("refuses updates, function updates, transactions and batches past it", function()
    local db = open(200)
    assert.is_true(db:put_item { PK = "a", SK = "b", v = "small" })
    local before = db:get_item { PK = "a", SK = "b" }
    local big = ("y"):rep(250)
    assert.has_error(function() db:update_item({ PK = "a", SK = "b" }, { set = { v = big } }) end)
    assert.has_error(function()
      db:update_item({ PK = "a", SK = "b" }, function(it) it.w = big; return it end)
    end)
    assert.has_error(function()
      db:update_item({ PK = "a", SK = "b" }, dynafile.expr("SET w = :w", nil, { [":w"] = big }))
    end)
    -- a transaction: nothing of it is written
    local ok = pcall(db.transaction, db, function(tx)
      tx:put_item { PK = "a", SK = "other", v = 1 }
      tx:put_item { PK = "a", SK = "c", v = big }
    end)
    assert.is_false(ok)
    assert.is_nil(db:get_item { PK = "a", SK = "other" })
    assert.is_nil(db:get_item { PK = "a", SK = "c" })
    ok = pcall(db.batch_write, db, function(w)
      w:put_item { PK = "a", SK = "e", v = 1 }
      w:put_item { PK = "a", SK = "f", v = big }
    end)
    assert.is_false(ok)
    assert.is_nil(db:get_item { PK = "a", SK = "f" })
    assert.same(before, db:get_item { PK = "a", SK = "b" })
    db:close()
  end)

  it("belongs to the handle: another handle on the same database may have none", function()
    local small = open(50)
    local free = assert(dynafile.open(dir, { sync = "off" }))
    local big = ("z"):rep(100000)
    assert.has_error(function() small:put_item { PK = "a", SK = "b", v = big } end)
    assert.is_true(free:put_item { PK = "a", SK = "b", v = big })
    assert.equal(#big, #small:get_item({ PK = "a", SK = "b" }).v)
    -- the limiting handle still deletes and reads what it could not write
    assert.is_true(small:delete_item { PK = "a", SK = "b" })
    small:close()
    free:close()
  end)
end)
