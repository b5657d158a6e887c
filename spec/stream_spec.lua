-- The cross-process change feed: the change log (`stream` option) and
-- db:poll_stream().
local dynafile = require "dynafile"
local fs = dofile("spec/support/fs.lua")
local procs = dofile("spec/support/procs.lua")

-- Run a chunk in another process against `dir`; it gets `db` opened.
local function in_other_process(dir, body)
  local status, out = fs.run_lua(string.format([[
local dynafile = require "dynafile"
local db = assert(dynafile.open(%q))
%s
db:close()
]], dir, body))
  assert.are.equal(0, status, out)
  return out
end

local function collector(db)
  local got = {}
  db:add_stream_listener(function(ev) got[#got + 1] = ev end)
  return got
end

describe("the change feed", function()
  local dir

  before_each(function() dir = fs.tmpdir() end)
  after_each(function() fs.cleanup() end)

  it("is off unless the stream option turns it on", function()
    local db = assert(dynafile.open(dir))
    local got = collector(db)
    assert(db:put_item { PK = "a", SK = 1 })
    assert.is_nil(got[1].seq)
    in_other_process(dir, [[assert(db:put_item { PK = "b", SK = 1 })]])
    assert.are.same({ 0, 0 }, { db:poll_stream() })
    assert.are.equal(1, #got)
    assert.are.equal(0, db:stat().stream_last)
    db:close()
  end)

  it("numbers this process's own events with their seq", function()
    local db = assert(dynafile.open(dir, { stream = { keep = 100 } }))
    local got = collector(db)
    assert(db:put_item { PK = "a", SK = 1 })
    assert(db:transaction(function(tx)
      tx:put_item { PK = "a", SK = 2 }
      tx:delete_item { PK = "a", SK = 1 }
      return true
    end))
    assert.are.same({ 1, 2, 3 }, { got[1].seq, got[2].seq, got[3].seq })
    if math.type then assert.are.equal("integer", math.type(got[1].seq)) end
    db:close()
  end)

  it("delivers what another process committed, in commit order, each with its seq", function()
    local db = assert(dynafile.open(dir, { stream = true }))
    local got = collector(db)
    in_other_process(dir, [[
      assert(db:put_item { PK = "u", SK = 1, n = 1 })
      assert(db:update_item({ PK = "u", SK = 1 }, { add = { n = 1 } }))
      assert(db:delete_item { PK = "u", SK = 1 })
    ]])
    assert.are.same({ 3, 0 }, { db:poll_stream() })
    assert.are.equal(3, #got)
    assert.are.same({ "PUT", "PUT", "DELETE" }, { got[1].action, got[2].action, got[3].action })
    assert.are.same({ 1, 2, 3 }, { got[1].seq, got[2].seq, got[3].seq })
    assert.is_nil(got[1].old)
    assert.are.equal(1, got[1].new.n)
    assert.are.equal(1, got[2].old.n)
    assert.are.equal(2, got[2].new.n)
    assert.are.equal(2, got[3].old.n)
    assert.is_nil(got[3].new)
    assert.is_true(math.abs(got[1].time - os.time()) < 60)
    -- each change is delivered once
    assert.are.same({ 0, 0 }, { db:poll_stream() })
    assert.are.equal(3, #got)
    db:close()
  end)

  it("does not deliver this process's own commits a second time", function()
    local db = assert(dynafile.open(dir, { stream = true }))
    local got = collector(db)
    assert(db:put_item { PK = "mine", SK = 1 })
    in_other_process(dir, [[assert(db:put_item { PK = "theirs", SK = 1 })]])
    assert(db:put_item { PK = "mine", SK = 2 })
    in_other_process(dir, [[assert(db:put_item { PK = "theirs", SK = 2 })]])
    assert.are.equal(2, #got) -- our own two, heard at commit
    assert.are.same({ 2, 0 }, { db:poll_stream() })
    assert.are.equal(4, #got)
    assert.are.same({ "mine", 1, "mine", 3, "theirs", 2, "theirs", 4 }, {
      got[1].new.PK, got[1].seq, got[2].new.PK, got[2].seq,
      got[3].new.PK, got[3].seq, got[4].new.PK, got[4].seq })
    db:close()
  end)

  it("treats another handle of this Lua state as its own", function()
    local db = assert(dynafile.open(dir, { stream = true }))
    local db2 = assert(dynafile.open(dir))
    local got = collector(db)
    assert(db2:put_item { PK = "x", SK = 1 })
    assert.are.equal(1, #got)
    assert.are.same({ 0, 0 }, { db:poll_stream() })
    assert.are.same({ 0, 0 }, { db2:poll_stream() })
    db2:close()
    db:close()
  end)

  it("starts from the changes committed after the database was opened", function()
    local db = assert(dynafile.open(dir, { stream = true }))
    assert(db:put_item { PK = "old", SK = 1 })
    db:close()
    in_other_process(dir, [[assert(db:put_item { PK = "old", SK = 2 })]])
    db = assert(dynafile.open(dir))
    local got = collector(db)
    in_other_process(dir, [[assert(db:put_item { PK = "new", SK = 1 })]])
    assert.are.same({ 1, 0 }, { db:poll_stream() })
    assert.are.equal("new", got[1].new.PK)
    db:close()
  end)

  it("counts the changes trimmed before they were polled as missed", function()
    local db = assert(dynafile.open(dir, { stream = { keep = 3 } }))
    local got = collector(db)
    in_other_process(dir, [[for i = 1, 10 do assert(db:put_item { PK = "p", SK = i }) end]])
    assert.are.same({ 3, 7 }, { db:poll_stream() })
    assert.are.same({ 8, 9, 10 }, { got[1].new.SK, got[2].new.SK, got[3].new.SK })
    local st = db:stat()
    assert.are.same({ 8, 10 }, { st.stream_first, st.stream_last })
    db:close()
  end)

  it("keeps the setting in the database for every process", function()
    local db = assert(dynafile.open(dir, { stream = { keep = 5, keep_seconds = 3600 } }))
    db:close()
    -- opened without the option: still logging, with the same retention
    in_other_process(dir, [[for i = 1, 8 do assert(db:put_item { PK = "p", SK = i }) end]])
    db = assert(dynafile.open(dir))
    local st = db:stat()
    assert.are.same({ 4, 8 }, { st.stream_first, st.stream_last })
    db:close()
    -- stream = false turns it off for everyone
    db = assert(dynafile.open(dir, { stream = false }))
    db:close()
    in_other_process(dir, [[assert(db:put_item { PK = "p", SK = 9 })]])
    db = assert(dynafile.open(dir))
    assert.are.equal(8, db:stat().stream_last)
    db:close()
  end)

  it("leaves no trace of a transaction that rolled back", function()
    local db = assert(dynafile.open(dir, { stream = true }))
    local got = collector(db)
    in_other_process(dir, [[
      pcall(db.transaction, db, function(tx)
        tx:put_item { PK = "gone", SK = 1 }
        error("changed my mind")
      end)
      assert(db:put_item { PK = "kept", SK = 1 })
    ]])
    assert.are.same({ 1, 0 }, { db:poll_stream() })
    assert.are.equal("kept", got[1].new.PK)
    assert.are.equal(1, got[1].seq)
    db:close()
  end)

  it("orders the changes of processes writing at once by commit, without gaps", function()
    local db = assert(dynafile.open(dir, { stream = { keep = 1000 } }))
    local got = collector(db)
    local code = [[
local dynafile = require "dynafile"
local db = assert(dynafile.open(arg[1]))
for i = 1, 40 do assert(db:put_item { PK = arg[2], SK = i }) end
print("done")
]]
    local a = procs.start(code, { dir, "a" })
    local b = procs.start(code, { dir, "b" })
    for _, w in ipairs { a, b } do
      local status, out = procs.wait(w, 120)
      assert.are.equal(0, status, out)
      procs.cleanup(w)
    end
    assert.are.same({ 80, 0 }, { db:poll_stream() })
    local next_sk = { a = 1, b = 1 }
    for i, ev in ipairs(got) do
      assert.are.equal(i, ev.seq)
      assert.are.equal(next_sk[ev.new.PK], ev.new.SK) -- each writer's order kept
      next_sk[ev.new.PK] = ev.new.SK + 1
    end
    db:close()
  end)

  it("reports a listener's error during a poll and still runs the others", function()
    local errors = {}
    local db = assert(dynafile.open(dir, {
      stream = true,
      listener_error = function(err) errors[#errors + 1] = err end,
    }))
    db:add_stream_listener(function() error("boom") end)
    local got = collector(db)
    in_other_process(dir, [[assert(db:put_item { PK = "z", SK = 1 })]])
    assert.are.same({ 1, 0 }, { db:poll_stream() })
    assert.are.equal(1, #got)
    assert.are.equal(1, #errors)
    assert.matches("boom", tostring(errors[1]))
    db:close()
  end)

  it("reads every writer's records with read_stream, its own included", function()
    local db = assert(dynafile.open(dir, { stream = true }))
    assert(db:put_item { PK = "a", SK = 1, v = 1 })
    in_other_process(dir, [[assert(db:put_item { PK = "b", SK = 1 })]])
    assert(db:delete_item { PK = "a", SK = 1 })
    local recs, nxt, first, last = db:read_stream()
    assert.are.same({ "PUT a", "PUT b", "DELETE a" }, {
      recs[1].action .. " " .. recs[1].new.PK,
      recs[2].action .. " " .. recs[2].new.PK,
      recs[3].action .. " " .. recs[3].old.PK })
    assert.are.same({ 1, 2, 3 }, { recs[1].seq, recs[2].seq, recs[3].seq })
    assert.is_number(recs[1].time)
    assert.are.same({ 3, 1, 3 }, { nxt, first, last })
    local more = db:read_stream(1, 1)
    assert.are.equal(1, #more)
    assert.are.equal(2, more[1].seq)
    assert.are.same({}, (db:read_stream(nxt)))
    assert.has_error(function() db:read_stream(-1) end,
      "dynafile.read_stream: after must be a non-negative integer")
    assert.has_error(function() db:read_stream(0, 0) end,
      "dynafile.read_stream: max must be a positive integer")
    db:close()
  end)

  it("refuses a malformed stream option", function()
    assert.has_error(function() dynafile.open(dir, { stream = "yes" }) end,
      "dynafile.open: stream must be a table {keep =, keep_seconds =} or a boolean")
    assert.has_error(function() dynafile.open(dir, { stream = { keep = -1 } }) end,
      "dynafile.open: stream.keep must be a non-negative integer")
    assert.has_error(function() dynafile.open(dir, { stream = { keep = 1.5 } }) end,
      "dynafile.open: stream.keep must be a non-negative integer")
    assert.has_error(function() dynafile.open(dir, { stream = { keep_seconds = "1" } }) end,
      "dynafile.open: stream.keep_seconds must be a non-negative number")
    assert.has_error(function() dynafile.open(dir, { stream = { size = 1 } }) end,
      "dynafile.open: stream: unknown field 'size'")
  end)
end)
