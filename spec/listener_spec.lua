-- Stream listeners: events after commit, in commit order, for every write
-- path; errors reported, never lost; listeners that read and write.
-- luacheck: globals io
local dynafile = require "dynafile"
local unpack = table.unpack or unpack -- luacheck: ignore 143

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  return p
end

local function rmdir(p)
  os.execute("rm -rf '" .. p .. "'")
end

-- A compact trace of events: "PUT a:1" with the new item's v, "DELETE a".
local function trace(list)
  return function(ev)
    local item = ev.new or ev.old
    local s = ev.action .. " " .. item.PK
    if ev.new and ev.new.v ~= nil then s = s .. ":" .. tostring(ev.new.v) end
    list[#list + 1] = s
  end
end

describe("a stream listener", function()
  local dir, db

  before_each(function()
    dir = tmpdir()
    db = assert(dynafile.open(dir, { pk = "PK", sk = false }))
  end)

  after_each(function()
    db:close()
    rmdir(dir)
  end)

  it("gets PUT and DELETE events with the old and new items", function()
    local events = {}
    db:add_stream_listener(function(ev) events[#events + 1] = ev end)
    db:put_item { PK = "a", v = 1 }
    db:put_item { PK = "a", v = 2 }
    db:delete_item { PK = "a" }
    assert.equal(3, #events)
    assert.same({ action = "PUT", new = { PK = "a", v = 1 } }, events[1])
    assert.same({ action = "PUT", old = { PK = "a", v = 1 }, new = { PK = "a", v = 2 } },
      events[2])
    assert.same({ action = "DELETE", old = { PK = "a", v = 2 } }, events[3])
  end)

  it("hears every write path: conditions, updates, batches and transactions", function()
    local got = {}
    db:add_stream_listener(trace(got))
    db:put_item({ PK = "a", v = 1 }, { condition = "not exists(PK)" })
    db:update_item({ PK = "a" }, { add = { v = 1 } })
    db:update_item({ PK = "b" }, function() return { v = 7 } end)
    db:delete_item({ PK = "b" }, { return_old = true })
    db:batch_write(function(w)
      w:put_item { PK = "c", v = 1 }
      w:delete_item { PK = "a" }
    end)
    db:transaction(function(tx)
      tx:put_item { PK = "d", v = 1 }
      tx:update_item({ PK = "d" }, { set = { v = 2 } })
    end)
    db:transact_write_items { { delete = { PK = "c" } }, { put = { PK = "e", v = 0 } } }
    -- the puts and deletes of a batch and of transact_write_items are
    -- written, and heard, in the order of the stored keys
    local function sorted(a, b) local t = { a, b } table.sort(t) return t end
    assert.same({ "PUT a:1", "PUT a:2", "PUT b:7", "DELETE b" }, { unpack(got, 1, 4) })
    assert.same({ "DELETE a", "PUT c:1" }, sorted(got[5], got[6]))
    assert.same({ "PUT d:1", "PUT d:2" }, { got[7], got[8] })
    assert.same({ "DELETE c", "PUT e:0" }, sorted(got[9], got[10]))
    assert.equal(10, #got)
  end)

  it("gets a batch's put then delete of one key as PUT then DELETE", function()
    local got = {}
    db:add_stream_listener(trace(got))
    db:batch_write(function(w)
      w:put_item { PK = "k", v = 1 }
      w:delete_item { PK = "k" }
      w:put_item { PK = "k", v = 2 }
      w:delete_item { PK = "k" }
    end)
    assert.same({ "PUT k:1", "DELETE k", "PUT k:2", "DELETE k" }, got)
    assert.is_nil(db:get_item { PK = "k" })
  end)

  it("hears nothing of failed, canceled or empty writes", function()
    db:put_item { PK = "a", v = 1 }
    local got = {}
    db:add_stream_listener(trace(got))
    db:put_item({ PK = "a", v = 2 }, { condition = "v == 0" })
    db:delete_item { PK = "missing" }
    db:delete_item({ PK = "missing" }, { return_old = true })
    db:transaction(function(tx)
      tx:put_item { PK = "x" }
      tx:condition_check({ PK = "a" }, "v == 0")
    end)
    pcall(db.batch_write, db, function(w)
      w:put_item { PK = "y" }
      error("stop")
    end)
    db:batch_write(function(w) w:delete_item { PK = "nobody" } end)
    assert.same({}, got)
  end)

  it("runs after the commit: it reads the new state", function()
    local seen
    db:add_stream_listener(function(ev)
      seen = db:get_item { PK = ev.new.PK }
    end)
    db:put_item { PK = "a", v = 1 }
    assert.same({ PK = "a", v = 1 }, seen)
  end)

  it("that raises neither stops the next listener nor loses the write", function()
    local reported, got = {}, {}
    db:close()
    db = assert(dynafile.open(dir, {
      listener_error = function(err, ev) reported[#reported + 1] = { err = err, ev = ev } end,
    }))
    db:add_stream_listener(function() error("listener one broke", 0) end)
    db:add_stream_listener(trace(got))
    assert.is_true(db:put_item { PK = "a", v = 1 })
    db:batch_write(function(w)
      w:put_item { PK = "b", v = 1 }
      w:put_item { PK = "c", v = 1 }
    end)
    assert.same({ "PUT a:1", "PUT b:1", "PUT c:1" }, got)
    assert.equal(3, #reported)
    assert.equal("listener one broke", reported[1].err)
    assert.equal("a", reported[1].ev.new.PK)
    assert.equal("c", reported[3].ev.new.PK)
    assert.is_not_nil(db:get_item { PK = "a" })
    assert.is_not_nil(db:get_item { PK = "c" })
  end)

  it("reports a listener's error on stderr without a listener_error function", function()
    local lines = {}
    local real = io.stderr
    io.stderr = { write = function(_, ...) lines[#lines + 1] = table.concat { ... } end }
    local ok = pcall(function()
      db:add_stream_listener(function() error("oops", 0) end)
      db:put_item { PK = "a" }
    end)
    io.stderr = real
    assert.is_true(ok)
    assert.same({ "dynafile: stream listener error: oops\n" }, lines)
    assert.is_not_nil(db:get_item { PK = "a" })
  end)

  it("reports on stderr when the listener_error function raises too", function()
    db:close()
    db = assert(dynafile.open(dir, { listener_error = function() error("bad handler", 0) end }))
    local lines = {}
    local real = io.stderr
    io.stderr = { write = function(_, ...) lines[#lines + 1] = table.concat { ... } end }
    pcall(function()
      db:add_stream_listener(function() error("oops", 0) end)
      db:put_item { PK = "a" }
    end)
    io.stderr = real
    assert.equal(1, #lines)
    assert.matches("oops (and the listener_error handler failed: bad handler)", lines[1], 1, true)
  end)

  it("may write: the write is a new commit whose events follow, in commit order", function()
    local one, two = {}, {}
    db:add_stream_listener(function(ev)
      one[#one + 1] = ev.action .. " " .. (ev.new or ev.old).PK
      if ev.new and ev.new.PK == "a" then
        assert(db:put_item { PK = "echo", v = ev.new.v })
        assert(db:delete_item { PK = "gone" })
      end
    end)
    db:add_stream_listener(trace(two))
    db:put_item { PK = "gone" }
    for i = #one, 1, -1 do one[i] = nil end
    for i = #two, 1, -1 do two[i] = nil end
    db:put_item { PK = "a", v = 5 }
    -- every listener sees the commits in order: a, then the echo, then the delete
    assert.same({ "PUT a", "PUT echo", "DELETE gone" }, one)
    assert.same({ "PUT a:5", "PUT echo:5", "DELETE gone" }, two)
    assert.equal(5, db:get_item { PK = "echo" }.v)
    assert.is_nil(db:get_item { PK = "gone" })
  end)

  it("may write inside a transaction of its own", function()
    local got = {}
    db:add_stream_listener(function(ev)
      if ev.new and ev.new.PK == "a" then
        db:transaction(function(tx) tx:put_item { PK = "b", v = ev.new.v + 1 } end)
      end
    end)
    db:add_stream_listener(trace(got))
    db:put_item { PK = "a", v = 1 }
    assert.same({ "PUT a:1", "PUT b:2" }, got)
  end)

  it("belongs to the database: writes through every handle reach it", function()
    local got = {}
    local other = assert(dynafile.open(dir))
    db:add_stream_listener(trace(got))
    other:put_item { PK = "x", v = 1 }
    db:put_item { PK = "y", v = 1 }
    other:close()
    assert.same({ "PUT x:1", "PUT y:1" }, got)
  end)

  it("stops hearing events once removed", function()
    local got = {}
    local h = db:add_stream_listener(trace(got))
    db:put_item { PK = "a", v = 1 }
    assert.is_true(db:remove_stream_listener(h))
    assert.is_false(db:remove_stream_listener(h))
    db:put_item { PK = "b", v = 1 }
    assert.same({ "PUT a:1" }, got)
  end)

  it("may remove itself while events are delivered", function()
    local got, h = {}, nil
    h = db:add_stream_listener(function(ev)
      got[#got + 1] = ev.new.PK
      db:remove_stream_listener(h)
    end)
    db:batch_write(function(w)
      w:put_item { PK = "a" }
      w:put_item { PK = "b" }
    end)
    assert.equal(1, #got) -- the first of the two, in the stored keys' order
  end)

  it("goes away when the last handle of its database closes", function()
    local got = {}
    db:add_stream_listener(trace(got))
    db:close()
    db = assert(dynafile.open(dir))
    db:put_item { PK = "a", v = 1 }
    assert.same({}, got)
  end)

  it("must be a function", function()
    assert.has_error(function() db:add_stream_listener "x" end,
      "dynafile.add_stream_listener: listener must be a function")
  end)
end)
