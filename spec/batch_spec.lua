-- The batch writer: db:batch_writer() and db:batch_write(fn).
-- luacheck: globals io
local dynafile = require "dynafile"

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  return p
end

local function rmdir(p)
  os.execute("rm -rf '" .. p .. "'")
end

describe("a batch writer", function()
  local dir, db

  before_each(function()
    dir = tmpdir()
    db = assert(dynafile.open(dir, { pk = "PK", sk = "SK" }))
  end)

  after_each(function()
    if db then db:close() end
    rmdir(dir)
  end)

  it("writes 10,000 puts over 1,000 partitions that a reopened database sees", function()
    local w = db:batch_writer()
    for i = 1, 10000 do
      assert.is_true(w:put_item { PK = "p" .. (i % 1000), SK = i, v = i * 2 })
    end
    assert.equal(10000, w:pending())
    assert.is_true(w:close())
    db:close()
    db = assert(dynafile.open(dir))
    for i = 1, 10000 do
      local item = db:get_item { PK = "p" .. (i % 1000), SK = i }
      assert(item and item.v == i * 2, "item " .. i .. " is missing after the reopen")
    end
    local n = 0
    for _ in db:scan() do n = n + 1 end
    assert.equal(10000, n)
  end)

  it("lets a later operation on the same key win, in order", function()
    db:put_item { PK = "d", SK = 1, v = "old" }
    assert.is_true(db:batch_write(function(w)
      w:put_item { PK = "a", SK = 1, v = 1 }
      w:put_item { PK = "a", SK = 1, v = 2 }
      w:put_item { PK = "b", SK = 1, v = 1 }
      w:delete_item { PK = "b", SK = 1 }
      w:delete_item { PK = "c", SK = 1 }
      w:put_item { PK = "c", SK = 1, v = 3 }
      w:delete_item { PK = "d", SK = 1 }
      w:put_item { PK = "d", SK = 1, v = "new" }
      w:delete_item { PK = "d", SK = 1 }
    end))
    assert.equal(2, db:get_item { PK = "a", SK = 1 }.v)
    assert.is_nil(db:get_item { PK = "b", SK = 1 })
    assert.equal(3, db:get_item { PK = "c", SK = 1 }.v)
    assert.is_nil(db:get_item { PK = "d", SK = 1 })
  end)

  it("keeps every item when a batch revisits a partition non-consecutively", function()
    assert.is_true(db:batch_write(function(w)
      for round = 1, 3 do
        for p = 1, 5 do
          w:put_item { PK = "p" .. p, SK = round, v = round }
        end
      end
      w:put_item { PK = "p1", SK = 1, v = "last" } -- back to the first partition
    end))
    for p = 1, 5 do
      local got = {}
      for item in db:query("p" .. p) do got[#got + 1] = item.SK end
      assert.same({ 1, 2, 3 }, got)
    end
    assert.equal("last", db:get_item { PK = "p1", SK = 1 }.v)
  end)

  it("commits a flush in one transaction: the first event already sees the last write", function()
    local seen
    db:add_stream_listener(function()
      if seen == nil then seen = db:get_item { PK = "z", SK = 500 } ~= nil end
    end)
    db:batch_write(function(w)
      for i = 1, 500 do w:put_item { PK = i % 2 == 0 and "y" or "z", SK = i } end
      w:put_item { PK = "z", SK = 500 }
    end)
    assert.is_true(seen)
  end)

  it("writes nothing when the batch function raises, and raises the error again", function()
    local boom = setmetatable({}, { __tostring = function() return "boom" end })
    local ok, err = pcall(db.batch_write, db, function(w)
      w:put_item { PK = "a", SK = 1 }
      w:delete_item { PK = "x", SK = 1 }
      error(boom)
    end)
    assert.is_false(ok)
    assert.equal(boom, err)
    assert.is_nil(db:get_item { PK = "a", SK = 1 })
  end)

  it("writes nothing until flush, then keeps working after a flush", function()
    local w = db:batch_writer()
    w:put_item { PK = "a", SK = 1 }
    assert.is_nil(db:get_item { PK = "a", SK = 1 })
    assert.is_true(w:flush())
    assert.is_not_nil(db:get_item { PK = "a", SK = 1 })
    assert.equal(0, w:pending())
    w:delete_item { PK = "a", SK = 1 }
    assert.is_true(w:flush())
    assert.is_nil(db:get_item { PK = "a", SK = 1 })
    assert.is_true(w:flush()) -- nothing queued
    assert.is_true(w:close())
  end)

  it("drops queued operations on discard", function()
    local w = db:batch_writer()
    w:put_item { PK = "a", SK = 1 }
    w:discard()
    assert.is_nil(db:get_item { PK = "a", SK = 1 })
    assert.has_error(function() w:put_item { PK = "b", SK = 1 } end,
      "dynafile.batch_writer.put_item: the batch writer is closed")
  end)

  it("encodes an item when it is queued, so later changes to the table do not matter", function()
    local item = { PK = "a", SK = 1, v = 1 }
    db:batch_write(function(w)
      w:put_item(item)
      item.v = 2
    end)
    assert.equal(1, db:get_item { PK = "a", SK = 1 }.v)
  end)

  it("raises at once on an invalid item or key, keeping what was queued", function()
    local w = db:batch_writer()
    w:put_item { PK = "ok", SK = 1 }
    assert.has_error(function() w:put_item { PK = "a", SK = 1, f = print } end)
    assert.has_error(function() w:put_item { PK = "a" } end)
    assert.has_error(function() w:delete_item { SK = 1 } end)
    assert.has_error(function() w:put_item "x" end,
      "dynafile.batch_writer.put_item: item must be a table, got string")
    assert.has_error(function() w.put_item({ PK = "a", SK = 1 }) end)
    assert.equal(1, w:pending())
    assert.is_true(w:close())
    assert.is_not_nil(db:get_item { PK = "ok", SK = 1 })
    assert.is_nil(db:get_item { PK = "a", SK = 1 })
  end)

  it("writes a flush in one call in the stored keys' order, a later op on a key winning", function()
    -- the listener hears the writes in the order they were made; the core
    -- makes them in the order of the stored keys (a scan's order), not in
    -- the order queued, and a later op on one key comes after an earlier
    local heard = {}
    db:add_stream_listener(function(ev)
      local it = ev.new or ev.old
      heard[#heard + 1] = ev.action .. " " .. it.PK .. "/" .. it.SK
    end)
    assert.is_true(db:batch_write(function(w)
      for i = 200, 1, -1 do w:put_item { PK = "p" .. i, SK = i } end
      w:delete_item { PK = "p7", SK = 7 }
      w:put_item { PK = "p7", SK = 7, again = true }
    end))
    local stored = {}
    for it in db:scan() do stored[#stored + 1] = "PUT " .. it.PK .. "/" .. it.SK end
    assert.equal(200, #stored)
    local expect = {}
    for _, s in ipairs(stored) do
      expect[#expect + 1] = s
      if s == "PUT p7/7" then
        expect[#expect + 1] = "DELETE p7/7"
        expect[#expect + 1] = "PUT p7/7"
      end
    end
    assert.same(expect, heard)
    assert.is_true(db:get_item({ PK = "p7", SK = 7 }).again)
  end)

  it("commits a batch larger than the map once the map has grown, one event per put", function()
    db:close()
    rmdir(dir)
    db = assert(dynafile.open(dir, { pk = "PK", sk = "SK", map_size = 65536 }))
    local events = 0
    db:add_stream_listener(function() events = events + 1 end)
    local pad = string.rep("x", 200)
    assert.is_true(db:batch_write(function(w)
      for i = 1, 5000 do w:put_item { PK = "p" .. i % 50, SK = i, pad = pad } end
    end))
    assert.equal(5000, events)
    assert.equal(5000, db:stat().items)
    for i = 1, 5000, 499 do assert.is_not_nil(db:get_item { PK = "p" .. i % 50, SK = i }) end
  end)

  it("raises when a key too long is queued, keeping the rest of the queue", function()
    local w = db:batch_writer()
    w:put_item { PK = "ok", SK = 1 }
    local ok, err = pcall(w.put_item, w, { PK = "a", SK = string.rep("s", 1025) })
    assert.is_false(ok)
    assert.matches("dynafile.batch_writer.put_item: key attribute SK is too long", err, 1, true)
    ok, err = pcall(w.delete_item, w, { PK = string.rep("p", 2049), SK = 1 })
    assert.is_false(ok)
    assert.matches("dynafile.batch_writer.delete_item: key attribute PK is too long", err, 1, true)
    assert.equal(1, w:pending())
    assert.is_true(w:close())
    assert.is_not_nil(db:get_item { PK = "ok", SK = 1 })
  end)

  it("raises at flush, writing nothing, when a queued index value is too long", function()
    db:close()
    db = assert(dynafile.open(dir, { gsi = { by_g = { pk = "G" } } }))
    local w = db:batch_writer()
    w:put_item { PK = "ok", SK = 1 }
    w:put_item { PK = "a", SK = 1, G = string.rep("g", 3000) }
    local ok, err = pcall(w.flush, w)
    assert.is_false(ok)
    assert.matches("dynafile.batch_writer.flush: ", err, 1, true)
    assert.matches("G is too long for index by_g", err, 1, true)
    assert.is_nil(db:get_item { PK = "ok", SK = 1 })
    w:discard()
    assert.equal(0, w:pending())
  end)

  it("ignores deletes of missing items", function()
    assert.is_true(db:batch_write(function(w)
      w:delete_item { PK = "nobody", SK = 0 }
    end))
  end)

  it("raises when flushed from inside a transaction instead of waiting for itself", function()
    local w = db:batch_writer()
    w:put_item { PK = "a", SK = 1 }
    local ok, err = pcall(db.transaction, db, function() return w:flush() end)
    assert.is_false(ok)
    assert.matches("dynafile.batch_writer.flush: the write transaction of this database is held",
      err, 1, true)
    assert.equal(1, w:pending())
    assert.is_true(w:flush())
    assert.is_not_nil(db:get_item { PK = "a", SK = 1 })
  end)

  it("refuses a read-only database and a closed one", function()
    db:put_item { PK = "a", SK = 1 }
    db:close()
    local ro = assert(dynafile.open(dir, { readonly = true }))
    local w = ro:batch_writer()
    w:put_item { PK = "b", SK = 1 }
    assert.has_error(function() w:flush() end,
      "dynafile.batch_writer.flush: the database is opened read-only")
    ro:close()
    assert.has_error(function() w:flush() end,
      "dynafile.batch_writer.flush: database is closed")
    assert.has_error(function() ro:batch_writer() end,
      "dynafile.batch_writer: database is closed")
    w:discard()
    db = nil
  end)

  it("runs batch_write's function with the writer and returns true", function()
    local got
    assert.is_true(db:batch_write(function(w) got = w end))
    assert.is_not_nil(got)
    assert.has_error(function() db:batch_write "x" end,
      "dynafile.batch_write: argument must be a function")
  end)
end)

describe("a batch writer collected with writes never flushed", function()
  local dir, db
  before_each(function()
    local p = os.tmpname()
    os.remove(p)
    dir = p .. "-lost"
    db = assert(dynafile.open(dir, { pk = "PK", sk = "SK" }))
  end)
  after_each(function()
    db:close()
    os.execute("rm -rf '" .. dir .. "'")
  end)

  -- Queue n puts in a writer nothing references afterwards, and collect
  -- it; what it wrote on stderr.
  local function drop_writer(n, finish)
    collectgarbage() -- nothing else collected while watching
    collectgarbage()
    local lines = {}
    local real = io.stderr
    io.stderr = { write = function(_, ...) lines[#lines + 1] = table.concat { ... } end }
    do
      local w = db:batch_writer()
      for i = 1, n do w:put_item { PK = "p", SK = i } end
      if finish then finish(w) end
    end
    collectgarbage()
    collectgarbage()
    io.stderr = real
    return lines
  end

  it("says so on stderr and makes the next call on the database raise, once", function()
    local lines = drop_writer(3)
    assert.are.same({ "dynafile: a batch writer of this database was garbage-collected with 3 "
      .. "queued writes, never flushed: they were lost (end every batch writer with w:flush(), "
      .. "w:close() or w:discard())\n" }, lines)
    local ok, err = pcall(db.get_item, db, { PK = "p", SK = 1 })
    assert.is_false(ok)
    assert.matches("dynafile.get_item: a batch writer of this database was garbage-collected "
      .. "with 3 queued writes", err, 1, true)
    assert.is_nil(db:get_item { PK = "p", SK = 1 })
    assert.is_true(db:put_item { PK = "p", SK = 1 })
  end)

  it("is silent when the writer was flushed, closed or discarded", function()
    for _, finish in ipairs {
      function(w) assert(w:flush()) end,
      function(w) assert(w:close()) end,
      function(w) w:discard() end,
    } do
      assert.are.same({}, drop_writer(2, finish))
      assert.is_true(db:put_item { PK = "q", SK = 1 })
    end
    assert.are.same({}, drop_writer(0))
  end)
end)
