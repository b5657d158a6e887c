-- A handle opened with readonly = true never changes the database, also
-- when a writable handle of the same process shares its environment (the
-- environment itself is then writable): purge_expired raises, as every
-- write method does, and drop_index returns the "ReadOnly" failure a
-- read-only environment gives.
local dynafile = require "dynafile"

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  return p .. "-rohandle"
end

local function count(iter)
  local n = 0
  for _ in iter do n = n + 1 end
  return n
end

describe("a read-only handle beside a writable one", function()
  local dir, db, ro
  before_each(function()
    dir = tmpdir()
    db = assert(dynafile.open(dir, {
      pk = "PK", sk = "SK", ttl = "exp", clock = function() return 1000 end,
      gsi = { g = { pk = "G" } },
    }))
    -- the expired item last: every write purges a few expired items
    db:put_item { PK = "a", SK = 2, G = "x" }
    db:put_item { PK = "a", SK = 1, G = "x", exp = 500 }
    ro = assert(dynafile.open(dir, { readonly = true }))
  end)
  after_each(function()
    ro:close()
    db:close()
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("raises on purge_expired and deletes nothing", function()
    local ok, err = pcall(ro.purge_expired, ro)
    assert.is_false(ok)
    assert.matches("dynafile.purge_expired: the database is opened read-only", err, 1, true)
    assert.are.equal(2, db:stat().items)
    assert.are.equal(1, db:purge_expired())
  end)

  it("raises on purge_expired with a TTL function too", function()
    ro:close()
    ro = assert(dynafile.open(dir, {
      readonly = true, ttl = function(item, now) return (item.exp or now) < now end,
    }))
    assert.has_error(function() ro:purge_expired() end,
      "dynafile.purge_expired: the database is opened read-only")
    assert.are.equal(2, db:stat().items)
  end)

  it("returns ReadOnly from drop_index and keeps the index", function()
    local ok, msg, code = ro:drop_index("g")
    assert.is_nil(ok)
    assert.are.equal("ReadOnly", code)
    assert.is_string(msg)
    local ok2, _, code2 = dynafile.drop_index(ro, "g")
    assert.is_nil(ok2)
    assert.are.equal("ReadOnly", code2)
    assert.is_not_nil(db:schema().indexes.g)
    assert.are.equal(1, count(db:query("x", { index = "g" })))
  end)
end)
