-- A stream listener that yields (a coroutine-based host such as OpenResty
-- sleeping or doing I/O in it) does not hold up the delivery of other
-- coroutines' commits: a write from another coroutine delivers its events
-- before it returns, also when the yielded coroutine is never resumed.
-- (Lua 5.4 only: yielding across pcall needs Lua 5.2+.)
local dynafile = require "dynafile"

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  return p .. "-lyield"
end

describe("a listener that yields", function()
  local dir, db, seen
  before_each(function()
    dir = tmpdir()
    db = assert(dynafile.open(dir, { pk = "PK", sk = "SK" }))
    seen = {}
    db:add_stream_listener(function(ev)
      seen[#seen + 1] = ev.new.SK
      if ev.new.pause then coroutine.yield() end
    end)
  end)
  after_each(function()
    db:close()
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("does not hold up the events of writes from other coroutines", function()
    local co = coroutine.create(function() db:put_item { PK = "a", SK = 1, pause = true } end)
    assert.is_true((coroutine.resume(co)))
    assert.are.equal("suspended", coroutine.status(co))
    db:put_item { PK = "a", SK = 2 }
    assert.are.same({ 1, 2 }, seen)
    -- the paused write finishes later without delivering anything twice
    assert.is_true((coroutine.resume(co)))
    assert.are.equal("dead", coroutine.status(co))
    db:put_item { PK = "a", SK = 3 }
    assert.are.same({ 1, 2, 3 }, seen)
  end)

  it("leaves delivery working when its coroutine is abandoned", function()
    local co = coroutine.create(function() db:put_item { PK = "a", SK = 1, pause = true } end)
    assert.is_true((coroutine.resume(co)))
    co = nil -- luacheck: ignore 311
    collectgarbage()
    db:put_item { PK = "a", SK = 2 }
    db:put_item { PK = "a", SK = 3 }
    assert.are.same({ 1, 2, 3 }, seen)
  end)

  it("still queues a listener's own writes behind the event being delivered", function()
    local order = {}
    db:add_stream_listener(function(ev)
      order[#order + 1] = ev.new.SK
      if ev.new.SK == 10 then db:put_item { PK = "a", SK = 11 } end
    end)
    db:put_item { PK = "a", SK = 10 }
    assert.are.same({ 10, 11 }, order)
    assert.are.same({ 10, 11 }, seen)
  end)
end)
