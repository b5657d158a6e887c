-- Every write path first purges a few expired items in its transaction.
-- A failure of that purge is the write's failure: a full map ("Retry")
-- runs the whole write again from the start (before it, a condition could
-- be evaluated on reads the doomed transaction refused and report
-- ConditionalCheckFailed); any other failure is returned, never ignored.
-- The failures are simulated by replacing the transaction's purge method.
local dynafile = require "dynafile"

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  return p .. "-wpurge"
end

-- Every write transaction begins with the purge of a few expired items
-- (in the binding's write_txn); when that purge fails, the begin returns
-- the failure.  The begin is made to fail once here.
describe("the purge at the start of a write", function()
  local dir, db, methods, real_begin
  before_each(function()
    dir = tmpdir()
    db = assert(dynafile.open(dir, { pk = "PK", sk = "SK", ttl = "exp" }))
    db:put_item { PK = "a", SK = 1, v = 1 }
    methods = getmetatable(db._c).__index
    real_begin = methods.write_txn
  end)
  after_each(function()
    methods.write_txn = real_begin
    db:close()
    os.execute("rm -rf '" .. dir .. "'")
  end)

  -- the begin fails once with code, then works
  local function fail_once(code)
    local calls = 0
    methods.write_txn = function(h, t)
      calls = calls + 1
      if calls == 1 then return nil, "simulated purge failure", code end
      return real_begin(h, t)
    end
    return function() return calls end
  end

  it("runs the write again when the map had to grow", function()
    local calls = fail_once("Retry")
    local seen = {}
    local ok = db:put_item({ PK = "a", SK = 1, v = 2 }, {
      condition = function(old) seen[#seen + 1] = old and old.v or false; return old ~= nil end,
    })
    assert.is_true(ok)
    assert.are.equal(2, calls())
    assert.are.same({ 1 }, seen) -- the condition ran once, in the run that committed
    assert.are.equal(2, db:get_item { PK = "a", SK = 1 }.v)
  end)

  it("returns any other failure and leaves the database as it was", function()
    fail_once("IOError")
    local ok, msg, code = db:update_item({ PK = "a", SK = 1 }, { set = { v = 3 } })
    assert.is_nil(ok)
    assert.are.equal("IOError", code)
    assert.are.equal("simulated purge failure", msg)
    assert.are.equal(1, db:get_item { PK = "a", SK = 1 }.v)
  end)
end)
