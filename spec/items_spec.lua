-- Items round-trip exactly: strings of any bytes, integers and floats
-- (kept apart on Lua 5.3+), booleans, nested maps and lists, dynafile.null
-- and empty lists marked with dynafile.array.
local dynafile = require "dynafile"
local support = dofile("spec/support/fs.lua")

local has_int = math.type ~= nil

describe("an item", function()
  local db

  before_each(function()
    db = assert(dynafile.open(support.tmpdir(), { pk = "PK", sk = "SK", sync = "off" }))
  end)

  after_each(function()
    db:close()
    support.cleanup()
  end)

  -- put {PK = "p", SK = "s", v = value}, read it back (through get, query
  -- and scan, which decode alike) and return the attribute v
  local function round_trip(value)
    assert(db:put_item({ PK = "p", SK = "s", v = value }))
    local got = db:get_item({ PK = "p", SK = "s" })
    local via_query = db:query("p")()
    local via_scan = db:scan()()
    assert.equal(support.dump(got), support.dump(via_query))
    assert.equal(support.dump(got), support.dump(via_scan))
    return got.v
  end

  it("keeps strings of any bytes, including NUL and invalid UTF-8", function()
    local all = {}
    for b = 0, 255 do all[#all + 1] = string.char(b) end
    all = table.concat(all)
    assert.equal(all, round_trip(all))
    assert.equal("a\0b\0", round_trip("a\0b\0"))
    assert.equal("", round_trip(""))
    assert.equal("\255\254\192\128", round_trip("\255\254\192\128"))
    local long = string.rep("0123456789", 100000) -- 1 MB
    assert.equal(long, round_trip(long))
  end)

  it("keeps numbers, and integers apart from floats on Lua 5.3+", function()
    local values = { 0, 1, -1, 127, 128, -32, -33, 255, 256, 65535, 65536,
      2147483647, -2147483648, 4294967296, 2 ^ 53, -(2 ^ 53), 0.5, -0.25, 1e300,
      -1e-300, math.huge, -math.huge, 3.14159 }
    if has_int then
      values[#values + 1] = math.maxinteger
      values[#values + 1] = math.mininteger
      values[#values + 1] = 1.0
      values[#values + 1] = -0.0
      values[#values + 1] = 2.0 ^ 63
    end
    for _, v in ipairs(values) do
      local got = round_trip(v)
      assert.equal(v, got)
      if has_int then
        assert.equal(math.type(v), math.type(got), "subtype of " .. tostring(v))
      end
    end
  end)

  it("keeps 1 and 1.0 apart on Lua 5.3+", function()
    if has_int then
      assert.equal("integer", math.type(round_trip(1)))
      assert.equal("float", math.type(round_trip(1.0)))
    else
      assert.equal(1, round_trip(1.0))
    end
  end)

  it("refuses NaN as an attribute value: it is no number", function()
    assert.error_matches(function() round_trip(0 / 0) end, "NaN")
  end)

  it("keeps booleans", function()
    assert.is_true(round_trip(true))
    assert.is_false(round_trip(false))
  end)

  it("keeps nested maps and lists", function()
    local v = {
      list = { 1, "two", { three = 3 }, { 4, { 5, { 6 } } } },
      map = { a = { b = { c = "deep" } }, n = 1.5, t = true },
      mixed = { { x = 1 }, { x = 2 } },
    }
    assert.same(v, round_trip(v))
  end)

  it("keeps 32 levels of nesting", function()
    local v = {}
    local cur = v
    for _ = 1, 30 do
      cur.x = {}
      cur = cur.x
    end
    cur.leaf = "here" -- the item, v and 30 more maps: 32 levels
    assert.same(v, round_trip(v))
  end)

  it("stores dynafile.null and gives it back", function()
    assert.equal(dynafile.null, round_trip(dynafile.null))
    local list = round_trip({ 1, dynafile.null, 3 })
    assert.equal(3, #list)
    assert.equal(dynafile.null, list[2])
    assert.equal(3, list[3])
  end)

  it("stores an empty table as an empty map and dynafile.array{} as an empty list", function()
    local map = round_trip({})
    assert.same({}, map)
    assert.is_nil(getmetatable(map))
    local list = round_trip(dynafile.array {})
    assert.same({}, list)
    assert.equal(getmetatable(dynafile.array {}), getmetatable(list))
    -- read and written again, an empty list stays a list
    local item = db:get_item({ PK = "p", SK = "s" })
    assert(db:put_item(item))
    local again = db:get_item({ PK = "p", SK = "s" })
    assert.equal(getmetatable(dynafile.array {}), getmetatable(again.v))
    -- dynafile.array on a filled table keeps its elements
    assert.same({ 1, 2 }, round_trip(dynafile.array { 1, 2 }))
  end)

  it("keeps attribute names of any bytes", function()
    local item = { PK = "p", SK = "s", [""] = 1, ["a.b"] = 2, ["\0"] = 3, ["é"] = 4 }
    assert(db:put_item(item))
    assert.same(item, db:get_item({ PK = "p", SK = "s" }))
  end)

  it("keeps many attributes", function()
    local item = { PK = "p", SK = "s" }
    for i = 1, 1000 do item["a" .. i] = i end
    assert(db:put_item(item))
    assert.same(item, db:get_item({ PK = "p", SK = "s" }))
  end)

  it("keeps attribute names that differ from item to item, of every length", function()
    -- names of 1 to 40 bytes (a short MessagePack string ends at 31), many
    -- sharing a length, a first or a last byte with another item's names
    local items = {}
    for i = 1, 300 do
      local len = i % 40 + 1
      local name = string.rep(string.char(97 + i % 26), len - 1) .. string.char(65 + i % 7)
      items[i] = { PK = "p", SK = string.format("s%03d", i), [name] = i, ["x" .. i] = name }
    end
    for _, item in ipairs(items) do assert(db:put_item(item)) end
    for _ = 1, 2 do -- the second pass reads names decoded before
      for i, item in ipairs(items) do
        assert.same(item, db:get_item({ PK = "p", SK = item.SK }))
        assert.same(item, db:batch_get_item({ { PK = "p", SK = item.SK } })[1])
        if i % 50 == 0 then
          local n = 0
          for got in db:query("p") do n = n + 1; assert.same(items[n], got) end
          assert.equal(#items, n)
          n = 0
          for got in db:scan() do n = n + 1; assert.same(items[n], got) end
          assert.equal(#items, n)
        end
      end
    end
  end)

  it("gives a fresh table on every read", function()
    db:put_item({ PK = "p", SK = "s", t = { 1 } })
    local a = db:get_item({ PK = "p", SK = "s" })
    a.t[1] = 99
    assert.equal(1, db:get_item({ PK = "p", SK = "s" }).t[1])
  end)
end)
