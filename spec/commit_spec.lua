-- The commit path (src/commit.c): the redo log beside the data file, what
-- recovery reports, the map growing inside a transaction without running
-- its code twice, and the sync modes' options.
local dynafile = require "dynafile"

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  return d
end

local function rm(d) os.execute("rm -rf '" .. d .. "'") end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- A value of n bytes that does not compress and differs per i.
local function blob(i, n)
  local t = {}
  for k = 1, math.floor(n / 8) do
    t[k] = string.format("%08x", (i * 2654435761 + k * 40503) % 4294967296)
  end
  return table.concat(t)
end

describe("the commit path", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() rm(dir) end)

  it("keeps a redo log and its lock file beside the data file", function()
    local db = assert(dynafile.open(dir, { pk = "PK", sk = "SK" }))
    assert(db:put_item { PK = "a", SK = 1 })
    assert.is_true(exists(dir .. "/redo.log"))
    assert.is_true(exists(dir .. "/redo.lock"))
    local r = db:check()
    assert.is_true(r.ok)
    assert.is_true(r.recovery.log_created) -- a new database got its log
    assert.is_false(r.recovery.recovered)
    assert.is_true(r.checkpoint >= 1)
    assert.is_true(r.log_bytes > 0) -- the put's record
    db:close()
    -- a clean close leaves nothing to recover
    db = assert(dynafile.open(dir))
    r = db:check()
    assert.is_false(r.recovery.recovered)
    assert.is_false(r.recovery.log_created)
    assert.equal(0, r.recovery.records_replayed)
    assert.equal(0, r.log_bytes)
    db:close()
  end)

  it("runs a transaction function once while the map grows under it many times", function()
    -- a 256 KiB map and 4 MB written in one transaction: the map grows
    -- several times in the middle of the function
    local db = assert(dynafile.open(dir, { pk = "PK", sk = "SK", map_size = 256 * 1024 }))
    local before = db:stat().map_size
    local calls = 0
    local got = db:transaction(function(tx)
      calls = calls + 1
      for i = 1, 2000 do
        tx:put_item { PK = "p" .. (i % 7), SK = i, v = blob(i, 2000) }
        -- reads see the transaction's own writes, across the growths
        assert(tx:get_item { PK = "p" .. (i % 7), SK = i }.v == blob(i, 2000))
      end
      return "done"
    end)
    assert.equal("done", got)
    assert.equal(1, calls)
    assert.is_true(db:stat().map_size > before * 4)
    assert.equal(2000, db:stat().items)
    for i = 1, 2000, 97 do
      assert.equal(blob(i, 2000), db:get_item { PK = "p" .. (i % 7), SK = i }.v)
    end
    assert.is_true(db:check().ok)
    db:close()
  end)

  it("runs an update function and a condition function once while the map grows", function()
    local db = assert(dynafile.open(dir, { pk = "PK", sk = "SK", map_size = 256 * 1024 }))
    local upd, cond = 0, 0
    -- each item is large enough that writing it needs a bigger map
    for i = 1, 6 do
      local new = assert(db:update_item({ PK = "big", SK = i }, function(old)
        upd = upd + 1
        assert.is_nil(old)
        return { PK = "big", SK = i, v = blob(i, 300000) }
      end))
      assert.equal(300000, #new.v)
      assert(db:put_item({ PK = "big2", SK = i, v = blob(i + 7, 300000) }, {
        condition = function(old)
          cond = cond + 1
          return old == nil
        end,
      }))
    end
    assert.equal(6, upd)
    assert.equal(6, cond)
    assert.equal(12, db:stat().items)
    db:close()
  end)

  it("builds a new index in a growing map reporting progress once per step", function()
    local db = assert(dynafile.open(dir, { pk = "PK", sk = "SK", map_size = 256 * 1024 }))
    for b = 0, 2999, 500 do
      assert(db:batch_write(function(w)
        for i = b, b + 499 do
          w:put_item { PK = "p" .. (i % 9), SK = i, g = "g" .. (i % 5), v = blob(i, 200) }
        end
      end))
    end
    db:close()
    local reports = {}
    db = assert(dynafile.open(dir, { gsi = { by_g = { pk = "g", sk = "SK" } },
      progress = function(_, done) reports[#reports + 1] = done end }))
    for k = 2, #reports do assert.is_true(reports[k] >= reports[k - 1]) end
    assert.equal(3000, reports[#reports])
    assert.equal(3000, db:stat().index_entries)
    db:close()
  end)

  it("recovers what a process killed before closing committed, and reports it", function()
    local script = string.format([[
      package.path = %q
      package.cpath = %q
      local dynafile = require "dynafile"
      local db = assert(dynafile.open(%q, { pk = "PK", sk = "SK", sync = "off" }))
      for i = 1, 300 do assert(db:put_item { PK = "k", SK = i, v = i }) end
      os.exit(0, false) -- no close: no last checkpoint
    ]], package.path, package.cpath, dir)
    local lua = arg and arg[-1] or "lua5.4"
    local f = assert(io.open(dir .. ".lua", "w"))
    f:write(script)
    f:close()
    assert.is_truthy(os.execute(string.format("%s '%s.lua'", lua, dir)))
    os.remove(dir .. ".lua")
    local db = assert(dynafile.open(dir))
    local r = db:check()
    assert.is_true(r.ok)
    assert.is_true(r.recovery.recovered)
    assert.equal(300, r.recovery.records_replayed)
    assert.is_true(r.recovery.replayed_bytes > 0)
    assert.is_true(r.recovery.seconds >= 0)
    -- the time as measured, not whole seconds (a recovery of 300 records
    -- takes a fraction of one)
    assert.is_true(r.recovery.seconds > 0 and r.recovery.seconds < 60)
    assert.equal(300, db:stat().items)
    assert.equal(300, db:get_item { PK = "k", SK = 300 }.v)
    db:close()
  end)

  it("refuses bad flush_ms and checkpoint_bytes options by name", function()
    for _, bad in ipairs { 0, -1, 1.5, "100", true } do
      assert.has_error(function() dynafile.open(dir, { flush_ms = bad }) end,
        "dynafile.open: flush_ms must be a positive integer")
      assert.has_error(function() dynafile.open(dir, { checkpoint_bytes = bad }) end,
        "dynafile.open: checkpoint_bytes must be a positive integer")
    end
  end)

  it("checkpoints every checkpoint_bytes, starting the log again", function()
    local db = assert(dynafile.open(dir, { pk = "PK", sk = "SK", sync = "normal",
                                           checkpoint_bytes = 64 * 1024 }))
    local first = db:check().checkpoint
    for i = 1, 400 do assert(db:put_item { PK = "k", SK = i, v = blob(i, 1000) }) end
    local r = db:check()
    assert.is_true(r.checkpoint > first + 3)
    assert.is_true(r.log_bytes < 64 * 1024 + 2048)
    db:close()
  end)

  it("opens a copy made by mdb_copy of a database in use, which gets its own log", function()
    local copy = tmpdir()
    local db = assert(dynafile.open(dir, { pk = "PK", sk = "SK", sync = "off",
                                           gsi = { g = { pk = "g" } } }))
    for i = 1, 500 do assert(db:put_item { PK = "k" .. i % 7, SK = i, g = "x" .. i % 3 }) end
    assert.is_truthy(os.execute(string.format("mkdir -p '%s' && mdb_copy '%s' '%s'",
      copy, dir, copy)))
    for i = 501, 600 do assert(db:put_item { PK = "k", SK = i }) end -- after the copy
    db:close()
    assert.is_false(exists(copy .. "/redo.log"))
    -- read-only: as copied, nothing written
    local c = assert(dynafile.open(copy, { readonly = true }))
    assert.equal(500, c:stat().items)
    c:close()
    assert.is_false(exists(copy .. "/redo.log"))
    c = assert(dynafile.open(copy))
    local r = c:check()
    assert.is_true(r.ok)
    assert.is_true(r.recovery.log_created)
    assert.equal(500, c:stat().items)
    assert.equal(500, c:stat().index_entries)
    assert(c:put_item { PK = "new", SK = 1, g = "x1" })
    c:close()
    c = assert(dynafile.open(copy))
    assert.equal(501, c:stat().items)
    assert.is_false(c:check().recovery.log_created)
    c:close()
    rm(copy)
  end)
end)
