-- The core flow a user meets first: put, get, delete, query in sort-key
-- order, starts_with in both directions, Lua filters with limits, scans,
-- pagination, and iterators that may write or stop early.
local dynafile = require "dynafile"
local support = dofile("spec/support/fs.lua")

describe("the core of dynafile", function()
  local db

  before_each(function()
    -- sync = "off": these tests are about behaviour, not durability (open_spec)
    db = assert(dynafile.open(support.tmpdir(), { pk = "PK", sk = "SK", sync = "off" }))
  end)

  after_each(function()
    db:close()
    support.cleanup()
  end)

  local function put_user(n)
    assert(db:put_item({ PK = "user#1", SK = string.format("role#%02d", n), n = n, age = 20 + n }))
  end

  it("puts an item and gets it back, and delete removes it", function()
    assert.is_true(db:put_item({ PK = "user#1", SK = "user#1", name = "Bob", age = 42,
      tags = { "a", "b" }, profile = { city = "Oslo" } }))
    local item = db:get_item({ PK = "user#1", SK = "user#1" })
    assert.same({ PK = "user#1", SK = "user#1", name = "Bob", age = 42,
      tags = { "a", "b" }, profile = { city = "Oslo" } }, item)
    assert.is_true(db:delete_item({ PK = "user#1", SK = "user#1" }))
    assert.is_nil(db:get_item({ PK = "user#1", SK = "user#1" }))
  end)

  it("returns nil for a missing item and deleting it is not an error", function()
    assert.is_nil(db:get_item({ PK = "nobody", SK = "x" }))
    assert.is_true(db:delete_item({ PK = "nobody", SK = "x" }))
  end)

  it("replaces an item with the same key", function()
    db:put_item({ PK = "p", SK = "s", v = 1, old = true })
    db:put_item({ PK = "p", SK = "s", v = 2 })
    assert.same({ PK = "p", SK = "s", v = 2 }, db:get_item({ PK = "p", SK = "s" }))
  end)

  it("queries a partition in sort-key order, and only that partition", function()
    for _, n in ipairs({ 5, 1, 9, 3, 7 }) do put_user(n) end
    db:put_item({ PK = "user#2", SK = "role#00" })
    db:put_item({ PK = "user#10", SK = "role#00" })
    local got = {}
    for item in db:query("user#1") do got[#got + 1] = item.n end
    assert.same({ 1, 3, 5, 7, 9 }, got)
  end)

  it("starts at starts_with, inclusive, in the direction of travel", function()
    for n = 1, 9 do put_user(n) end
    local fwd, back = {}, {}
    for item in db:query("user#1", { starts_with = "role#05" }) do fwd[#fwd + 1] = item.n end
    for item in db:query("user#1", { starts_with = "role#05", scan_index_forward = false }) do
      back[#back + 1] = item.n
    end
    assert.same({ 5, 6, 7, 8, 9 }, fwd)
    assert.same({ 5, 4, 3, 2, 1 }, back)
  end)

  it("starts_with between two sort keys starts at the next one", function()
    for n = 2, 8, 2 do put_user(n) end
    local fwd, back = {}, {}
    for item in db:query("user#1", { starts_with = "role#05" }) do fwd[#fwd + 1] = item.n end
    for item in db:query("user#1", { starts_with = "role#05", scan_index_forward = false }) do
      back[#back + 1] = item.n
    end
    assert.same({ 6, 8 }, fwd)
    assert.same({ 4, 2 }, back)
  end)

  it("applies a Lua filter before the limit", function()
    for n = 1, 30 do put_user(n) end
    local got = {}
    for item in db:query("user#1", { filter = function(i) return i.age > 30 end, limit = 10 }) do
      got[#got + 1] = item.n
    end
    assert.same({ 11, 12, 13, 14, 15, 16, 17, 18, 19, 20 }, got)
  end)

  it("scans every partition with a filter", function()
    for i = 1, 250 do
      db:put_item({ PK = "user#" .. (i % 7), SK = string.format("%04d", i),
        name = i % 3 == 0 and "Bob" or "Ann" })
    end
    local n, all = 0, 0
    for item in db:scan({ filter = function(i) return i.name == "Bob" end }) do
      assert.equal("Bob", item.name)
      n = n + 1
    end
    for _ in db:scan() do all = all + 1 end
    assert.equal(83, n)
    assert.equal(250, all)
  end)

  it("reads a query across many pages in order", function()
    db:batch_write(function(w)
      for i = 1, 1234 do w:put_item({ PK = "big", SK = i }) end
    end)
    local expect, n = 1, 0
    for item in db:query("big") do
      assert.equal(expect, item.SK)
      expect, n = expect + 1, n + 1
    end
    assert.equal(1234, n)
  end)

  it("resumes after a key with start_after and query_page", function()
    for n = 1, 25 do put_user(n) end
    local seen, key, pages = {}, nil, 0
    repeat
      local items, nk = db:query_page("user#1", { limit = 10, start_after = key })
      for _, item in ipairs(items) do seen[#seen + 1] = item.n end
      key, pages = nk, pages + 1
    until key == nil
    assert.equal(25, #seen)
    for i = 1, 25 do assert.equal(i, seen[i]) end
    assert.is_true(pages >= 3)
    local after = {}
    for item in db:query("user#1", { start_after = { PK = "user#1", SK = "role#22" } }) do
      after[#after + 1] = item.n
    end
    assert.same({ 23, 24, 25 }, after)
  end)

  it("lets a loop write to the database while it iterates", function()
    for n = 1, 250 do put_user(n % 100) end -- 100 distinct items
    local count = 0
    for item in db:query("user#1") do
      count = count + 1
      assert(db:put_item({ PK = "copy", SK = item.SK, n = item.n }))
      assert(db:delete_item({ PK = "user#1", SK = item.SK }))
    end
    assert.equal(100, count)
    local copies = 0
    for _ in db:query("copy") do copies = copies + 1 end
    assert.equal(100, copies)
    assert.is_nil(next(db:query_page("user#1")))
  end)

  it("may stop a loop early and go on using the database", function()
    for n = 1, 300 do db:put_item({ PK = "p", SK = n }) end
    for _ = 1, 50 do
      for item in db:query("p") do
        if item.SK == 3 then break end
      end
    end
    assert.is_true(db:put_item({ PK = "p", SK = 0 }))
    local first = db:query("p")()
    assert.equal(0, first.SK)
  end)

  it("keeps items written through the batch writer and drops a failed batch", function()
    assert.is_true(db:batch_write(function(w)
      for i = 1, 10 do w:put_item({ PK = "b", SK = i }) end
    end))
    assert.has_error(function()
      db:batch_write(function(w)
        w:put_item({ PK = "b", SK = 11 })
        error("stop")
      end)
    end)
    local n = 0
    for _ in db:query("b") do n = n + 1 end
    assert.equal(10, n)
  end)

  it("closes, and a closed handle refuses further calls", function()
    db:put_item({ PK = "a", SK = "b" })
    assert.is_true(db:close())
    assert.is_true(db:close()) -- twice is fine
    assert.has_error(function() db:get_item({ PK = "a", SK = "b" }) end)
  end)
end)
