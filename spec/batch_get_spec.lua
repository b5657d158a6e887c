-- batch_get_item: several items read in one snapshot.
local dynafile = require "dynafile"

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  return p
end

local function rmdir(p)
  os.execute("rm -rf '" .. p .. "'")
end

describe("batch_get_item", function()
  local dir, db

  after_each(function()
    if db then db:close() end
    db = nil
    rmdir(dir)
  end)

  local function open(opts)
    dir = tmpdir()
    opts = opts or {}
    opts.pk, opts.sk = "PK", "SK"
    db = assert(dynafile.open(dir, opts))
  end

  it("returns one entry per key, in order, false for a missing item", function()
    open()
    db:put_item { PK = "a", SK = 1, v = "a1" }
    db:put_item { PK = "b", SK = 2, v = "b2" }
    local got = db:batch_get_item {
      { PK = "b", SK = 2 }, { PK = "nope", SK = 0 }, { PK = "a", SK = 1 },
      { PK = "a", SK = 2 }, { PK = "b", SK = 2 },
    }
    assert.same({ { PK = "b", SK = 2, v = "b2" }, false, { PK = "a", SK = 1, v = "a1" }, false,
      { PK = "b", SK = 2, v = "b2" } }, got)
    assert.are_not.equal(got[1], got[5]) -- each entry its own table
    assert.same({}, db:batch_get_item {})
  end)

  it("reads every key from one snapshot, even when a write lands in between", function()
    -- The TTL function runs for each item read; here it sneaks in a write
    -- to the next key, which the snapshot must not see.
    local wrote = false
    open { ttl = function(item)
      if item.PK == "a" and not wrote then
        wrote = true
        db:put_item { PK = "b", SK = 1, v = "new" }
      end
      return false
    end }
    db:put_item { PK = "a", SK = 1, v = "old" }
    db:put_item { PK = "b", SK = 1, v = "old" }
    local got = db:batch_get_item { { PK = "a", SK = 1 }, { PK = "b", SK = 1 } }
    assert.is_true(wrote)
    assert.equal("old", got[2].v)
    assert.equal("new", db:get_item { PK = "b", SK = 1 }.v)
  end)

  it("gives false for expired items", function()
    -- times near the present: a server deleting expired items by its own
    -- clock keeps them
    local t0 = os.time()
    local now = t0 + 1000
    open { ttl = "exp", clock = function() return now end }
    db:put_item { PK = "a", SK = 1, exp = t0 + 2000 }
    db:put_item { PK = "b", SK = 1, exp = t0 + 500 }
    local got = db:batch_get_item { { PK = "a", SK = 1 }, { PK = "b", SK = 1 } }
    assert.is_table(got[1])
    assert.is_false(got[2])
  end)

  it("works inside a transaction, reading the committed state", function()
    open()
    db:put_item { PK = "a", SK = 1, v = 1 }
    db:transaction(function(tx)
      tx:put_item { PK = "a", SK = 1, v = 2 }
      assert.equal(1, db:batch_get_item { { PK = "a", SK = 1 } }[1].v)
    end)
    assert.equal(2, db:batch_get_item { { PK = "a", SK = 1 } }[1].v)
  end)

  it("raises on a key list or key that is not valid", function()
    open()
    assert.has_error(function() db:batch_get_item "x" end,
      "dynafile.batch_get_item: keys must be a list of keys")
    assert.has_error(function() db:batch_get_item { 1 } end,
      "dynafile.batch_get_item: keys[1] must be a key table, got number")
    assert.has_error(function() db:batch_get_item { { PK = "a" } } end)
    assert.has_error(function() db:batch_get_item { { PK = "a", SK = {} } } end)
    db:close()
    assert.has_error(function() db:batch_get_item {} end,
      "dynafile.batch_get_item: database is closed")
  end)

  it("holds no read transaction while a TTL function runs: a coroutine may yield in it", function()
    local paused
    open {
      map_size = 1024 * 1024,
      ttl = function(item)
        if item.SK == 1 and not paused then paused = coroutine.yield() end
        return false
      end,
    }
    db:put_item { PK = "a", SK = 1 }
    local co = coroutine.create(function() return db:batch_get_item { { PK = "a", SK = 1 } } end)
    assert.is_true((coroutine.resume(co)))
    assert.are.equal("suspended", coroutine.status(co))
    -- another coroutine writes more than the map holds: the map must grow
    assert.is_true((db:put_item { PK = "big", SK = 1, v = string.rep("x", 3 * 1024 * 1024) }))
    local ok, got = coroutine.resume(co, "go")
    assert.is_true(ok)
    assert.are.equal("a", got[1].PK)
    assert.is_truthy(db:get_item { PK = "big", SK = 1 })
  end)
end)
