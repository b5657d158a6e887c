-- db:set_ttl: setting, changing and clearing the TTL attribute of a
-- database after it was created, for every handle of the process, with
-- the expiry and projected index entries rebuilt (db:check()).
local dynafile = require "dynafile"
local support = dofile("spec/support/fs.lua")
local backend = dofile("spec/support/backend.lua")

describe("db:set_ttl", function()
  local dir, db
  local past, future = os.time() - 3600, os.time() + 3600

  before_each(function()
    dir = support.tmpdir()
    db = assert(dynafile.open(dir, { gsi = { by_g = { pk = "g", projection = { "exp" } } } }))
    assert(db:put_item({ PK = "a", SK = 1, g = "x", exp = past, alt = future }))
    assert(db:put_item({ PK = "b", SK = 1, g = "x", exp = future, alt = past }))
  end)

  after_each(function()
    if db then db:close() end
    support.cleanup()
  end)

  local function keys_of(iter)
    local out = {}
    for item in iter do out[#out + 1] = item.PK end
    table.sort(out)
    return table.concat(out, ",")
  end

  it("sets a first TTL attribute: expired items vanish from reads and indexes", function()
    assert.equal("a,b", keys_of(db:scan()))
    assert.is_true(db:set_ttl("exp"))
    assert.equal("exp", db:schema().ttl)
    assert.is_nil(db:get_item({ PK = "a", SK = 1 }))
    assert.equal("b", keys_of(db:scan()))
    assert.equal("b", keys_of(db:query("x", { index = "by_g" })))
    backend.assert_checked(db)
    assert.equal(1, db:purge_expired())
  end)

  it("changes the attribute, and false clears it", function()
    assert.is_true(db:set_ttl("exp"))
    assert.is_true(db:set_ttl("alt"))
    assert.equal("alt", db:schema().ttl)
    assert.equal("a", keys_of(db:scan()))
    backend.assert_checked(db)
    assert.is_true(db:set_ttl(false))
    assert.is_nil(db:schema().ttl)
    assert.equal("a,b", keys_of(db:scan()))
    backend.assert_checked(db)
    assert.equal(0, db:purge_expired())
  end)

  it("holds for the other handles of the process and for a reopen", function()
    local other = assert(dynafile.open(dir))
    assert.is_not_nil(other:get_item({ PK = "a", SK = 1 }))
    assert.is_true(db:set_ttl("exp"))
    assert.is_nil(other:get_item({ PK = "a", SK = 1 }))
    assert.equal("b", keys_of(other:scan()))
    assert.equal(1, other:purge_expired())
    other:close()
    db:close()
    db = assert(dynafile.open(dir))
    assert.equal("exp", db:schema().ttl)
    -- an open never changes the attribute: set_ttl does
    local again, msg, code = dynafile.open(dir, { ttl = "alt" })
    assert.is_nil(again)
    assert.equal("ValidationError", code)
    assert.matches("TTL attribute is exp, not alt", msg, 1, true)
  end)

  it("is returned on a read-only handle, the database unchanged", function()
    local ro = assert(dynafile.open(dir, { readonly = true }))
    local ok, msg, code = ro:set_ttl("exp")
    assert.is_nil(ok)
    assert.equal("ReadOnly", code)
    assert.matches("dynafile.set_ttl: ", msg, 1, true)
    ro:close()
    assert.is_nil(db:schema().ttl)
  end)

  it("raises on a bad name or from inside a transaction, naming itself", function()
    for _, bad in ipairs({ true, 7, {} }) do
      assert.has_error(function() db:set_ttl(bad) end,
        "dynafile.set_ttl: name must be an attribute name or false, got " .. type(bad))
    end
    local ok, err = pcall(db.set_ttl, db, "")
    assert.is_false(ok)
    assert.matches("dynafile.set_ttl: ttl must be a non-empty attribute name", err, 1, true)
    ok, err = pcall(db.transaction, db, function() db:set_ttl("exp") end)
    assert.is_false(ok)
    assert.matches("dynafile.set_ttl: ", tostring(err), 1, true)
    assert.matches("is held by this thread", tostring(err), 1, true)
    assert.is_nil(db:schema().ttl)
    assert.equal("a,b", keys_of(db:scan()))
  end)
end)
