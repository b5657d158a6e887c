-- Transactions: db:transaction(fn) and db:transact_write_items(actions).
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

local function key(i) return { PK = "k" .. i, SK = 0 } end

describe("a transaction", function()
  local dir, db

  before_each(function()
    dir = tmpdir()
    db = assert(dynafile.open(dir, { pk = "PK", sk = "SK" }))
    for i = 1, 5 do db:put_item { PK = "k" .. i, SK = 0, v = i } end
  end)

  after_each(function()
    db:close()
    rmdir(dir)
  end)

  local function values()
    local out = {}
    for i = 1, 5 do
      local item = db:get_item(key(i))
      out[i] = item and item.v or false
    end
    return out
  end

  it("commits every action together and returns the function's values", function()
    local a, b, c = db:transaction(function(tx)
      tx:put_item { PK = "k1", SK = 0, v = 10 }
      tx:delete_item(key(2))
      tx:update_item(key(3), { add = { v = 30 } })
      assert.is_true(tx:condition_check(key(4), "v == 4"))
      return "done", nil, 3
    end)
    assert.equal("done", a)
    assert.is_nil(b)
    assert.equal(3, c)
    assert.same({ 10, false, 33, 4, 5 }, values())
  end)

  it("rolls back when the function returns nil, err, and returns its values", function()
    local a, b, c, d = db:transaction(function(tx)
      tx:put_item { PK = "k1", SK = 0, v = 10 }
      tx:delete_item(key(2))
      return nil, "not enough funds", "Funds", { need = 5 }
    end)
    assert.is_nil(a)
    assert.equal("not enough funds", b)
    assert.equal("Funds", c)
    assert.same({ need = 5 }, d)
    assert.same({ 1, 2, 3, 4, 5 }, values())
  end)

  it("rolls back when the function returns false, err", function()
    local a, b = db:transaction(function(tx)
      tx:put_item { PK = "k1", SK = 0, v = 10 }
      return false, { reason = "no" }
    end)
    assert.is_false(a)
    assert.same({ reason = "no" }, b)
    assert.same({ 1, 2, 3, 4, 5 }, values())
  end)

  it("commits when the function returns nothing, nil alone, or false alone", function()
    local unpack = table.unpack or unpack -- luacheck: ignore 143
    for i, ret in ipairs { { n = 0 }, { n = 1 }, { n = 1, false }, { n = 3, nil, nil, "x" } } do
      local first = db:transaction(function(tx)
        tx:put_item { PK = "k" .. i, SK = 0, v = 100 + i }
        return unpack(ret, 1, ret.n)
      end)
      assert.equal(ret[1], first)
    end
    assert.same({ 101, 102, 103, 104, 5 }, values())
  end)

  it("sees its own writes through tx, and nobody else does before the commit", function()
    db:transaction(function(tx)
      tx:put_item { PK = "k1", SK = 0, v = 100 }
      assert.equal(100, tx:get_item(key(1)).v)
      assert.equal(1, db:get_item(key(1)).v)
      tx:delete_item(key(2))
      assert.is_nil(tx:get_item(key(2)))
      assert.equal(2, db:get_item(key(2)).v)
      local new = tx:update_item(key(1), { add = { v = 1 } })
      assert.equal(101, new.v)
    end)
    assert.same({ 101, false, 3, 4, 5 }, values())
  end)

  it("rolls back and raises the error again when the function raises", function()
    local err = {}
    local ok, got = pcall(db.transaction, db, function(tx)
      tx:put_item { PK = "k1", SK = 0, v = 0 }
      tx:delete_item(key(2))
      error(err)
    end)
    assert.is_false(ok)
    assert.equal(err, got)
    assert.same({ 1, 2, 3, 4, 5 }, values())
  end)

  it("leaves all five keys untouched when the third of five actions fails its condition", function()
    local ok, msg, code, reasons = db:transaction(function(tx)
      tx:put_item({ PK = "k1", SK = 0, v = 10 })
      tx:update_item(key(2), { set = { v = 20 } }, { condition = "v == 2" })
      local r1, r2, r3 = tx:delete_item(key(3),
        { condition = function(old) return old.v == 99 end })
      assert.is_nil(r1)
      assert.equal("the condition failed", r2)
      assert.equal("ConditionalCheckFailed", r3)
      tx:put_item { PK = "k4", SK = 0, v = 40 }
      tx:delete_item(key(5))
      return "not returned"
    end)
    assert.is_nil(ok)
    assert.equal("TransactionCanceled", code)
    assert.equal("dynafile.transaction: transaction canceled: action 3 (delete_item): "
      .. "the condition failed", msg)
    assert.same({
      { code = "None" }, { code = "None" },
      { code = "ConditionalCheckFailed", message = "the condition failed" },
      { code = "None" }, { code = "None" },
    }, reasons)
    assert.same({ 1, 2, 3, 4, 5 }, values())
  end)

  it("judges the key of a put as db:put_item does, with the same message", function()
    local bad = {
      { SK = 0, v = 1 },                            -- no partition key
      { PK = "a", v = 1 },                          -- no sort key
      { PK = "a", SK = false },                     -- a sort key of no key type
      { PK = string.rep("p", 2049), SK = 0 },       -- a partition key too long
      { PK = "a", SK = 0, f = function() end },     -- a value no item holds
    }
    for _, item in ipairs(bad) do
      local ok, want = pcall(db.put_item, db, item)
      assert.is_false(ok)
      local ok2, got = pcall(db.transaction, db, function(tx)
        tx:put_item { PK = "k1", SK = 0, v = 10 }
        tx:put_item(item)
      end)
      assert.is_false(ok2)
      -- (raised at the caller's line: this file's; the DynamoDB backend
      -- raises its own encoding errors at none)
      if not backend.remote then
        assert.matches("^[^:]*transaction_spec%.lua:%d+: dynafile%.transaction%.put_item: ", got)
      end
      got = got:gsub("^[^:]*:%d+: ", "")
      assert.equal((want:gsub("^dynafile%.put_item:", "dynafile.transaction.put_item:")), got)
      for _, opts in ipairs { { condition = function() return true end }, { return_old = true } } do
        local ok3, got3 = pcall(db.transaction, db, function(tx) tx:put_item(item, opts) end)
        assert.is_false(ok3)
        assert.equal(got, (got3:gsub("^[^:]*:%d+: ", "")))
      end
    end
    assert.same({ 1, 2, 3, 4, 5 }, values())
  end)

  it("reports every failed action, in order, and names the first in the message", function()
    local _, msg, code, reasons = db:transaction(function(tx)
      tx:condition_check(key(1), "v == 1")
      tx:condition_check(key(2), "v == 0")
      tx:put_item({ PK = "k3", SK = 0 }, { condition = "v == 0" })
      tx:update_item(key(4), { add = { v = 1 } })
    end)
    assert.equal("TransactionCanceled", code)
    assert.matches("action 2 (condition_check)", msg, 1, true)
    local codes = {}
    for i, r in ipairs(reasons) do codes[i] = r.code end
    assert.same({ "None", "ConditionalCheckFailed", "ConditionalCheckFailed", "None" }, codes)
    assert.same({ 1, 2, 3, 4, 5 }, values())
  end)

  it("cancels with a ValidationError reason when an update does not fit the item", function()
    db:put_item { PK = "s", SK = 0, v = "text" }
    local _, _, code, reasons = db:transaction(function(tx)
      tx:put_item { PK = "k1", SK = 0, v = 0 }
      local r, m, c = tx:update_item({ PK = "s", SK = 0 }, { add = { v = 1 } })
      assert.is_nil(r)
      assert.matches("holds a string, not a number", m, 1, true)
      assert.equal("ValidationError", c)
    end)
    assert.equal("TransactionCanceled", code)
    assert.equal("None", reasons[1].code)
    assert.equal("ValidationError", reasons[2].code)
    assert.equal(1, db:get_item(key(1)).v)
  end)

  it("returns ValidationError and writes nothing when a condition string does not parse", function()
    local ok, msg, code = db:transaction(function(tx)
      tx:put_item { PK = "k1", SK = 0, v = 0 }
      tx:delete_item(key(2), { condition = "v ==" })
    end)
    assert.is_nil(ok)
    assert.equal("ValidationError", code)
    assert.matches("^dynafile.transaction.delete_item: condition: ", msg)
    assert.same({ 1, 2, 3, 4, 5 }, values())
  end)

  it("returns the old item from tx actions with return_old", function()
    db:transaction(function(tx)
      local ok, old = tx:put_item({ PK = "k1", SK = 0, v = 10 }, { return_old = true })
      assert.is_true(ok)
      assert.same({ PK = "k1", SK = 0, v = 1 }, old)
      ok, old = tx:delete_item(key(2), { return_old = true })
      assert.is_true(ok)
      assert.same({ PK = "k2", SK = 0, v = 2 }, old)
      local new
      new, old = tx:update_item(key(3), { add = { v = 1 } }, { return_old = true })
      assert.equal(4, new.v)
      assert.equal(3, old.v)
    end)
    assert.same({ 10, false, 4, 4, 5 }, values())
  end)

  it("raises, instead of waiting for itself, on a write through the db inside", function()
    for _, write in ipairs {
      function() db:put_item { PK = "k1", SK = 0 } end,
      function() db:delete_item(key(1)) end,
      function() db:update_item(key(1), { set = { v = 0 } }) end,
      function() db:put_item({ PK = "k1", SK = 0 }, { condition = "v == 1" }) end,
      function() db:transaction(function() end) end,
      function() db:transact_write_items { { delete = key(1) } } end,
      function() db:batch_write(function(w) w:delete_item(key(1)) end) end,
    } do
      local ok, err = pcall(db.transaction, db, function(tx)
        tx:put_item { PK = "k2", SK = 0, v = 0 }
        write()
      end)
      assert.is_false(ok)
      assert.matches("the write transaction of this database is held", err, 1, true)
    end
    assert.same({ 1, 2, 3, 4, 5 }, values())
  end)

  it("raises on a write through another handle of the same database inside", function()
    local other = assert(dynafile.open(dir))
    local ok, err = pcall(db.transaction, db, function()
      other:put_item { PK = "k1", SK = 0, v = 0 }
    end)
    other:close()
    assert.is_false(ok)
    assert.matches("dynafile.put_item: the write transaction of this database is held", err,
      1, true)
    assert.same({ 1, 2, 3, 4, 5 }, values())
  end)

  it("lets a transaction write to another database", function()
    local dir2 = tmpdir()
    local db2 = assert(dynafile.open(dir2, { pk = "PK", sk = "SK" }))
    db:transaction(function(tx)
      tx:put_item { PK = "k1", SK = 0, v = 7 }
      db2:put_item { PK = "x", SK = 0 }
    end)
    assert.is_not_nil(db2:get_item { PK = "x", SK = 0 })
    assert.equal(7, db:get_item(key(1)).v)
    db2:close()
    rmdir(dir2)
  end)

  it("commits everything once, even when the map must grow on the way", function()
    local dir2 = tmpdir()
    local small = assert(dynafile.open(dir2, { pk = "PK", sk = "SK", map_size = 65536 }))
    local events = 0
    small:add_stream_listener(function() events = events + 1 end)
    local pad = string.rep("y", 300)
    local r = small:transaction(function(tx)
      for i = 1, 4000 do tx:put_item { PK = "p" .. i % 40, SK = i, pad = pad } end
      return "all in"
    end)
    assert.equal("all in", r)
    assert.equal(4000, events)
    assert.equal(4000, small:stat().items)
    small:close()
    rmdir(dir2)
  end)

  it("refuses a transaction object used after its transaction ended", function()
    local saved
    db:transaction(function(tx) saved = tx end)
    assert.has_error(function() saved:put_item { PK = "k1", SK = 0 } end,
      "dynafile.transaction.put_item: the transaction is over")
    assert.has_error(function() saved.get_item(key(1)) end)
  end)

  it("raises on misuse inside, rolling back", function()
    local ok = pcall(db.transaction, db, function(tx)
      tx:put_item { PK = "k1", SK = 0, v = 0 }
      tx:put_item { PK = "k1" }
    end)
    assert.is_false(ok)
    assert.has_error(function()
      db:transaction(function(tx) tx:condition_check(key(1)) end)
    end, "dynafile.transaction.condition_check: condition is required")
    assert.has_error(function() db:transaction "x" end,
      "dynafile.transaction: argument must be a function")
    assert.same({ 1, 2, 3, 4, 5 }, values())
  end)
end)

describe("transact_write_items", function()
  local dir, db

  before_each(function()
    dir = tmpdir()
    db = assert(dynafile.open(dir, { pk = "PK", sk = "SK" }))
    for i = 1, 5 do db:put_item { PK = "k" .. i, SK = 0, v = i } end
  end)

  after_each(function()
    db:close()
    rmdir(dir)
  end)

  local function values()
    local out = {}
    for i = 1, 6 do
      local item = db:get_item(key(i))
      out[i] = item and item.v or false
    end
    return out
  end

  it("applies puts, deletes, updates and checks together and returns true", function()
    assert.is_true(db:transact_write_items {
      { put = { PK = "k6", SK = 0, v = 6 }, condition = "not exists(PK)" },
      { delete = key(1) },
      { update = key(2), changes = { add = { v = 10 } }, condition = "v == 2" },
      { check = key(3), condition = function(old) return old.v == 3 end },
      { update = key(4), changes = function(old) return { v = old.v * 10 } end },
    })
    assert.same({ false, 12, 3, 40, 5, 6 }, values())
  end)

  it("leaves every key untouched when the third of five actions fails, one reason each", function()
    local ok, msg, code, reasons = db:transact_write_items {
      { put = { PK = "k1", SK = 0, v = 10 } },
      { delete = key(2), condition = "v == 2" },
      { update = key(3), changes = { set = { v = 30 } }, condition = "v == 0" },
      { check = key(4), condition = "v == 4" },
      { put = { PK = "k5", SK = 0, v = 50 } },
    }
    assert.is_nil(ok)
    assert.equal("TransactionCanceled", code)
    assert.equal("dynafile.transact_write_items: transaction canceled: actions[3] (update): "
      .. "the condition failed", msg)
    assert.same({
      { code = "None" }, { code = "None" },
      { code = "ConditionalCheckFailed", message = "the condition failed" },
      { code = "None" }, { code = "None" },
    }, reasons)
    assert.same({ 1, 2, 3, 4, 5, false }, values())
  end)

  it("refuses two actions on one item with a ValidationError, writing nothing", function()
    local ok, msg, code = db:transact_write_items {
      { put = { PK = "k1", SK = 0, v = 10 } },
      { put = { PK = "k6", SK = 0, v = 60 } },
      { check = { PK = "k1", SK = 0 }, condition = "v == 1" },
    }
    assert.is_nil(ok)
    assert.equal("ValidationError", code)
    assert.equal("dynafile.transact_write_items: actions[1] and actions[3] name the same item "
      .. "(one action per item)", msg)
    assert.same({ 1, 2, 3, 4, 5, false }, values())
    -- 1 and 1.0 are the same number, so the same key
    db:put_item { PK = "n", SK = 1 }
    assert.equal("ValidationError", select(3, db:transact_write_items {
      { delete = { PK = "n", SK = 1 } }, { put = { PK = "n", SK = 1.0, v = 1 } } }))
    assert.is_true(db:transact_write_items {
      { delete = { PK = "n", SK = 1 } }, { put = { PK = "n", SK = 1.5 } } })
  end)

  it("names one item by one key in any form of its number", function()
    local same = {
      { 0.5, dynafile.decimal("0.50") },
      { 2 ^ 60, dynafile.decimal("1152921504606846976") },
      { dynafile.decimal("12345678901234567890.5"), dynafile.decimal("1.23456789012345678905e19") },
    }
    for i, pair in ipairs(same) do
      local ok, msg, code = db:transact_write_items {
        { put = { PK = "f" .. i, SK = pair[1] } }, { put = { PK = "f" .. i, SK = pair[2] } } }
      assert.is_nil(ok, tostring(pair[1]))
      assert.equal("ValidationError", code)
      assert.matches("actions%[1%] and actions%[2%] name the same item", msg)
    end
    assert.is_true(db:transact_write_items {
      { put = { PK = "g", SK = dynafile.decimal("12345678901234567890.5"), v = 1 } },
      { put = { PK = "g", SK = 2 ^ 60, v = 2 } },
    })
    assert.equal(1, db:get_item({ PK = "g", SK = dynafile.decimal("12345678901234567890.5") }).v)
    assert.equal(2, db:get_item({ PK = "g", SK = 1152921504606846976 }).v)
  end)

  it("takes binary key values, and names one item by its bytes", function()
    local ok, msg, code = db:transact_write_items {
      { put = { PK = "b", SK = dynafile.binary("ab") } },
      { put = { PK = "b", SK = dynafile.binary("ab"), v = 1 } } }
    assert.is_nil(ok)
    assert.equal("ValidationError", code)
    assert.matches("actions%[1%] and actions%[2%] name the same item", msg)
    assert.is_true(db:transact_write_items {
      { put = { PK = "b", SK = dynafile.binary("ab"), v = 1 } },
      { put = { PK = "b", SK = dynafile.binary("ac"), v = 2 } },
    })
    assert.equal(1, db:get_item({ PK = "b", SK = dynafile.binary("ab") }).v)
    assert.equal(2, db:get_item({ PK = "b", SK = dynafile.binary("ac") }).v)
  end)

  it("returns ValidationError for a condition string that does not parse", function()
    local ok, msg, code = db:transact_write_items {
      { put = { PK = "k1", SK = 0, v = 10 } },
      { delete = key(2), condition = "v = = 2" },
    }
    assert.is_nil(ok)
    assert.equal("ValidationError", code)
    assert.matches("^dynafile.transact_write_items: actions%[2%]: condition: ", msg)
    assert.same({ 1, 2, 3, 4, 5, false }, values())
  end)

  it("cancels with a ValidationError reason when an update does not fit", function()
    local _, _, code, reasons = db:transact_write_items {
      { put = { PK = "k1", SK = 0, v = 10 } },
      { update = key(2), changes = { set = { ["v.x"] = 1 } } },
    }
    assert.equal("TransactionCanceled", code)
    assert.equal("ValidationError", reasons[2].code)
    assert.same({ 1, 2, 3, 4, 5, false }, values())
  end)

  it("raises on malformed actions before writing anything", function()
    for _, actions in ipairs {
      {}, "x", { 1 }, { { put = { PK = "a", SK = 0 }, delete = key(1) } },
      { { nothing = true } }, { { put = { PK = "a", SK = 0 }, extra = 1 } },
      { { check = key(1) } }, { { update = key(1) } }, { { put = { PK = "a" } } },
      { { put = { PK = "a", SK = 0, f = print } } }, { { delete = key(1), condition = 5 } },
      { { update = key(1), changes = { set = { SK = 1 } } } },
    } do
      assert.has_error(function() db:transact_write_items(actions) end)
    end
    assert.same({ 1, 2, 3, 4, 5, false }, values())
  end)

  it("raises inside a transaction instead of waiting for itself", function()
    local ok, err = pcall(db.transaction, db, function()
      db:transact_write_items { { delete = key(1) } }
    end)
    assert.is_false(ok)
    assert.matches("dynafile.transact_write_items: the write transaction of this database is held",
      err, 1, true)
  end)

  it("lets an update function raise, rolling back and raising the error", function()
    local ok, err = pcall(db.transact_write_items, db, {
      { delete = key(1) },
      { update = key(2), changes = function() error("nope", 0) end },
    })
    assert.is_false(ok)
    assert.equal("nope", err)
    assert.same({ 1, 2, 3, 4, 5, false }, values())
  end)
end)
