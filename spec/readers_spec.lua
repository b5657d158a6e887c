-- Reader slots: how many, and what happens when they run out.
local dynafile = require "dynafile"
local fs = dofile("spec/support/fs.lua")

describe("reader slots", function()
  local dir

  before_each(function() dir = fs.tmpdir() end)
  after_each(function() fs.cleanup() end)

  it("default to 2046, room for many nginx workers overlapping a reload", function()
    local db = assert(dynafile.open(dir))
    assert.are.equal(2046, db:stat().max_readers)
    db:close()
  end)

  it("are set by max_readers when the database is first opened", function()
    local db = assert(dynafile.open(dir, { max_readers = 8 }))
    assert.are.equal(8, db:stat().max_readers)
    db:close()
  end)

  it("can be raised by a later first opener, never lowered", function()
    local db = assert(dynafile.open(dir, { max_readers = 8 }))
    db:close()
    db = assert(dynafile.open(dir, { max_readers = 16 }))
    assert.are.equal(16, db:stat().max_readers)
    db:close()
    db = assert(dynafile.open(dir, { max_readers = 4 }))
    assert.are.equal(16, db:stat().max_readers)
    db:close()
  end)

  it("ignore max_readers of an opener while another handle has the database open", function()
    local db = assert(dynafile.open(dir, { max_readers = 8 }))
    local db2 = assert(dynafile.open(dir, { max_readers = 64 }))
    assert.are.equal(8, db2:stat().max_readers)
    db2:close()
    db:close()
  end)

  it("report exhaustion as nil, a message and ReadersFull, at once, and recover", function()
    local db = assert(dynafile.open(dir, { max_readers = 4 }))
    -- a process that writes pins its checkpoint with one slot
    assert(db:put_item { PK = "a", SK = 1, v = 1 })
    -- read transactions held open (as a long batch_get_item would)
    local held = {}
    local txn, msg, code
    repeat
      txn, msg, code = db._c:read_txn()
      if txn then held[#held + 1] = txn end
    until not txn or #held > 10
    assert.are.equal(3, #held)
    assert.are.equal("ReadersFull", code)
    assert.matches("reader slot", msg)
    assert.matches("max_readers", msg)
    -- the public calls say the same, and do not wait for a slot
    local item, msg2, code2 = db:get_item { PK = "a", SK = 1 }
    assert.is_nil(item)
    assert.are.equal("ReadersFull", code2)
    assert.matches("reader slot", msg2)
    local items, msg3, code3 = db:scan_page()
    assert.is_nil(items)
    assert.are.equal("ReadersFull", code3, msg3)
    -- writes need no reader slot (beyond the pin, taken already)
    assert.is_true(db:put_item { PK = "a", SK = 2, v = 2 })
    held[1]:free()
    assert.are.equal(2, db:get_item { PK = "a", SK = 2 }.v)
    for i = 2, #held do held[i]:free() end
    assert.are.equal(2, #db:scan_page())
    db:close()
  end)

  it("make poll_stream report ReadersFull too, then recover", function()
    -- turning the log on is a write: one slot for the pin, two left
    local db = assert(dynafile.open(dir, { max_readers = 3, stream = true }))
    local t1 = assert(db._c:read_txn())
    local t2 = assert(db._c:read_txn())
    -- a second handle opens (opening needs no reader slot) ...
    local db2 = assert(dynafile.open(dir))
    -- ... and its first poll, which needs one, fails clearly
    local n, msg, code = db2:poll_stream()
    assert.is_nil(n)
    assert.are.equal("ReadersFull", code, msg)
    t1:free()
    t2:free()
    assert.are.same({ 0, 0 }, { db2:poll_stream() })
    db2:close()
    db:close()
  end)
end)
