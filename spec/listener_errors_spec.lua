-- Whatever a stream listener raises -- a string, nil, a table, an error
-- object whose __tostring raises or returns no string, a coroutine -- the
-- write that made the event returns its committed result, the other
-- listeners hear the event, later writes are still heard, and the error is
-- reported: to listener_error, or on stderr.
-- luacheck: globals io
local dynafile = require "dynafile"

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  return p .. "-lerr"
end

-- Error values a listener can raise.
local function bad_tostring()
  return setmetatable({}, { __tostring = function() error("tostring broke") end })
end
local function tostring_raising_bad()
  return setmetatable({}, { __tostring = function() error(bad_tostring()) end })
end
local function tostring_number()
  return setmetatable({}, { __tostring = function() return 42 end })
end
local RAISED = {
  { "a string", function() return "plain" end },
  { "nil", function() return nil end },
  { "a table", function() return { code = 7 } end },
  { "an object whose __tostring raises", bad_tostring },
  { "an object whose __tostring raises such an object", tostring_raising_bad },
  { "an object whose __tostring returns a number", tostring_number },
  { "a coroutine", function() return coroutine.create(function() end) end },
}

-- Capture what is written to stderr while f runs.
local function stderr_of(f)
  local lines = {}
  local real = io.stderr
  io.stderr = { write = function(_, ...) lines[#lines + 1] = table.concat { ... } end }
  local ok, err = pcall(f)
  io.stderr = real
  assert(ok, err)
  return lines
end

describe("a stream listener that raises", function()
  local dir, db

  before_each(function()
    dir = tmpdir()
  end)

  after_each(function()
    if db then db:close() end
    os.execute("rm -rf '" .. dir .. "'")
  end)

  for _, case in ipairs(RAISED) do
    local what, make = case[1], case[2]

    it(what .. " leaves the write's result and every later delivery intact", function()
      local reported, n, heard = {}, 0, {}
      db = assert(dynafile.open(dir, {
        listener_error = function(err)
          n = n + 1
          reported[n] = err
        end,
      }))
      local value = make()
      db:add_stream_listener(function() error(value, 0) end)
      db:add_stream_listener(function(ev) heard[#heard + 1] = ev.new and ev.new.SK end)
      assert.is_true(db:put_item { PK = "a", SK = 1 })
      local results = { db:put_item({ PK = "a", SK = 2 }, { condition = "not exists(PK)" }) }
      assert.are.same({ true }, results)
      assert.is_true(db:transaction(function(tx)
        tx:put_item { PK = "a", SK = 3 }
        return true
      end))
      assert.are.same({ 1, 2, 3 }, heard)
      assert.are.equal(3, n)
      assert.are.equal(value, reported[1])
      assert.is_not_nil(db:get_item { PK = "a", SK = 3 })
    end)

    it(what .. " is reported on stderr without listener_error, never raised", function()
      db = assert(dynafile.open(dir))
      local heard = 0
      db:add_stream_listener(function() error(make(), 0) end)
      db:add_stream_listener(function() heard = heard + 1 end)
      local lines = stderr_of(function()
        assert.is_true(db:put_item { PK = "a", SK = 1 })
        assert.is_true(db:put_item { PK = "a", SK = 2 })
      end)
      assert.are.equal(2, heard)
      assert.are.equal(2, #lines)
      assert.matches("^dynafile: stream listener error: ", lines[1])
    end)

    it(what .. " raised by listener_error too is reported on stderr", function()
      db = assert(dynafile.open(dir, { listener_error = function() error(make(), 0) end }))
      local heard = 0
      db:add_stream_listener(function() error(make(), 0) end)
      db:add_stream_listener(function() heard = heard + 1 end)
      local lines = stderr_of(function()
        assert.is_true(db:put_item { PK = "a", SK = 1 })
        assert.is_true(db:put_item { PK = "a", SK = 2 })
      end)
      assert.are.equal(2, heard)
      assert.are.equal(2, #lines)
      assert.matches("(and the listener_error handler failed: ", lines[1], 1, true)
    end)
  end

  it("names an error whose __tostring fails by its type", function()
    db = assert(dynafile.open(dir))
    db:add_stream_listener(function() error(bad_tostring(), 0) end)
    local lines = stderr_of(function() db:put_item { PK = "a", SK = 1 } end)
    assert.are.same({ "dynafile: stream listener error: (a table whose __tostring failed)\n" },
      lines)
  end)
end)
