-- Key values and their order: numbers numerically (integers and floats
-- together), strings bytewise, numbers before strings, empty strings,
-- partition keys up to 2048 bytes (stored hashed past 61 bytes) and sort
-- keys up to 1,024 bytes (DF_SK_MAX in src/dynafile.h).  The blocks after
-- the first hold what only a local database's keys can hold: numbers
-- and strings in one attribute, empty strings, bytes that are not UTF-8,
-- numbers past DynamoDB's range.
local dynafile = require "dynafile"
local support = dofile("spec/support/fs.lua")

local has_int = math.type ~= nil

-- bytewise string order (Lua's < may follow the locale)
local function bytes_less(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = a:byte(i), b:byte(i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

-- A database opened for one block of tests, and its helpers.
local function keyed_db()
  local t = {}

  before_each(function()
    t.db = assert(dynafile.open(support.tmpdir(), { pk = "PK", sk = "SK", sync = "off" }))
  end)

  after_each(function()
    t.db:close()
    support.cleanup()
  end)

  function t.sort_keys(pk, opts)
    local got = {}
    for item in t.db:query(pk, opts) do got[#got + 1] = item.SK end
    return got
  end

  function t.put_all(pk, list)
    -- in a scrambled order, so order comes from the keys alone
    for i = #list, 1, -2 do assert(t.db:put_item({ PK = pk, SK = list[i] })) end
    for i = #list - 1, 1, -2 do assert(t.db:put_item({ PK = pk, SK = list[i] })) end
  end

  return t
end

describe("keys", function()
  local t = keyed_db()
  local sort_keys, put_all = t.sort_keys, t.put_all

  it("orders numbers numerically, integers and floats together", function()
    local nums = { -1e125, -(2 ^ 53), -1000, -1.5, -1, -0.5, 0, 1e-100, 0.5, 1,
      1.5, 2, 3, 10, 100, 2 ^ 53, 2 ^ 60, 1e125 }
    if has_int then
      nums = { -1e125, math.mininteger, -(2 ^ 53), -1000, -1.5, -1, -0.5, 0,
        1e-100, 0.5, 1, 1.5, 2, 3, 10, 100, 2 ^ 53, math.maxinteger - 1, math.maxinteger,
        2.0 ^ 63, 1e125 }
    end
    put_all("n", nums)
    local got = sort_keys("n")
    assert.equal(#nums, #got)
    for i = 1, #nums do assert.equal(nums[i], got[i]) end
    local back = sort_keys("n", { scan_index_forward = false })
    for i = 1, #nums do assert.equal(nums[#nums + 1 - i], back[i]) end
  end)

  it("orders large integers exactly, also next to floats", function()
    if not has_int then
      -- Lua 5.1 numbers are doubles: integers beyond 2^53 do not exist there
      put_all("big", { 2 ^ 53, 2 ^ 53 + 2, 2 ^ 54 })
      assert.same({ 2 ^ 53, 2 ^ 53 + 2, 2 ^ 54 }, sort_keys("big"))
      return
    end
    -- a float that is an integer in the int64 range is that integer: 2.0^62
    -- is 4611686018427387904, below the integer 2^62 + 1 (its shortest
    -- decimal, 4611686018427388000, would be above)
    local m, i53, i62 = math.maxinteger, math.tointeger(2 ^ 53), math.tointeger(2 ^ 62)
    local list = { -m - 1, -i62, 2 ^ 53, i53 + 1, i53 + 2, 2.0 ^ 62, i62 + 1, m - 1, m }
    put_all("big", list)
    local got = sort_keys("big")
    assert.equal(#list, #got)
    for i = 1, #list do
      assert.equal(dynafile.number_string(list[i]), dynafile.number_string(got[i]))
      if math.type(list[i]) == "integer" then assert.equal("integer", math.type(got[i])) end
    end
  end)

  it("treats an integer and the equal float as one key", function()
    local db = t.db
    assert(db:put_item({ PK = "p", SK = 1, v = "int" }))
    assert.equal("int", db:get_item({ PK = "p", SK = 1.0 }).v)
    assert(db:put_item({ PK = "p", SK = 1.0, v = "float" }))
    assert.same({ 1 }, sort_keys("p"))
    assert.equal("float", db:get_item({ PK = "p", SK = 1 }).v)
    assert(db:put_item({ PK = "p", SK = -0.0, v = "zero" }))
    assert.equal("zero", db:get_item({ PK = "p", SK = 0 }).v)
  end)

  it("keeps partitions with long keys apart, up to 2048 bytes", function()
    local db = t.db
    local a61 = string.rep("a", 61)     -- stored inline
    local a62 = string.rep("a", 62)     -- stored hashed from here on
    local a2048 = string.rep("a", 2048)
    local b2048 = string.rep("a", 2047) .. "b"
    local nul = string.rep("\0", 1000)
    for _, pk in ipairs({ a61, a62, a2048, b2048, nul }) do
      for i = 1, 3 do assert(db:put_item({ PK = pk, SK = i, len = #pk })) end
    end
    for _, pk in ipairs({ a61, a62, a2048, b2048, nul }) do
      assert.same({ 1, 2, 3 }, sort_keys(pk))
      local item = db:get_item({ PK = pk, SK = 2 })
      assert.equal(pk, item.PK)
      assert.same({ 3, 2, 1 }, sort_keys(pk, { scan_index_forward = false }))
      assert.same({ 2, 3 }, sort_keys(pk, { starts_with = 2 }))
    end
    assert(db:delete_item({ PK = a2048, SK = 2 }))
    assert.same({ 1, 3 }, sort_keys(a2048))
    assert.same({ 1, 2, 3 }, sort_keys(b2048))
    local n = 0
    for _ in db:scan() do n = n + 1 end
    assert.equal(14, n)
  end)

  it("refuses a partition key longer than 2048 bytes", function()
    local db = t.db
    local long = string.rep("x", 2049)
    assert.has_error(function() db:put_item({ PK = long, SK = 1 }) end,
      "dynafile.put_item: key attribute PK is too long (2049 bytes, at most 2048)")
    assert.has_error(function() db:get_item({ PK = long, SK = 1 }) end)
    assert.has_error(function() for _ in db:query(long) do end end)
  end)

  it("queries with number sort keys and starts_with between them", function()
    put_all("p", { 1, 2.5, 4, 8 })
    assert.same({ 4, 8 }, sort_keys("p", { starts_with = 3 }))
    assert.same({ 2.5, 1 }, sort_keys("p", { starts_with = 3, scan_index_forward = false }))
    assert.same({ 2.5, 4, 8 }, sort_keys("p", { starts_with = 2.5 }))
  end)
end)

describe("keys of strings", function()
  local t = keyed_db()

  it("orders strings bytewise, a prefix first", function()
    local strs = { "\0", "\0\0", "\0\1", "\1", " ", "A", "B", "Z", "a", "a\0", "a\0\0",
      "a\1", "aa", "ab", "b", "z", "\127", "\194\128", "\195\169", "\226\130\172" }
    local sorted = {}
    for i, s in ipairs(strs) do sorted[i] = s end
    table.sort(sorted, bytes_less)
    assert.same(strs, sorted) -- the list above is in byte order
    t.put_all("s", strs)
    assert.same(strs, t.sort_keys("s"))
  end)

  it("accepts sort keys up to 1,024 bytes of any bytes (DynamoDB's limit)", function()
    local db = t.db
    local s1024 = string.rep("s", 1024)
    local nul1024 = string.rep("\0", 1024)
    assert(db:put_item({ PK = "p", SK = s1024 }))
    assert(db:put_item({ PK = "p", SK = nul1024 }))
    assert.equal(s1024, db:get_item({ PK = "p", SK = s1024 }).SK)
    assert.equal(nul1024, db:get_item({ PK = "p", SK = nul1024 }).SK)
    assert.same({ nul1024, s1024 }, t.sort_keys("p"))
  end)

  it("refuses a sort key past the limit with a message naming it", function()
    local db = t.db
    local ok, err = pcall(db.put_item, db, { PK = "p", SK = string.rep("s", 1025) })
    assert.is_false(ok)
    assert.matches("dynafile.put_item: key attribute SK is too long", err, 1, true)
    assert.matches("1025 bytes, at most 1024", err, 1, true)
    assert.is_nil(db:scan()())
  end)
end)

describe("keys of numbers as partition keys", function()
  local t = keyed_db()

  it("treats an integer and the equal float as one partition key", function()
    local db = t.db
    assert(db:put_item({ PK = 7, SK = "x" }))
    assert.is_table(db:get_item({ PK = 7.0, SK = "x" }))
    assert.equal(1, #t.sort_keys(7.0))
    assert(db:put_item({ PK = 7.5, SK = "y" }))
    assert.same({ "y" }, t.sort_keys(7.5))
  end)
end)

describe("keys only a local database holds", function()
  local t = keyed_db()
  local sort_keys, put_all = t.sort_keys, t.put_all

  it("orders infinities and numbers past DynamoDB's range with the others", function()
    local nums = { -math.huge, -1e300, -1e126, -1, 0, 1e-300, 1e-131, 1, 1e126, 1e300, math.huge }
    put_all("n", nums)
    assert.same(nums, sort_keys("n"))
  end)

  it("gives integer and float keys back with their subtype on Lua 5.3+", function()
    if not has_int then return end
    -- 2.0^62 is the integer 2^62, below 2^62 + 1
    local i53, i62 = math.tointeger(2 ^ 53), math.tointeger(2 ^ 62)
    put_all("f", { 2 ^ 53, i53 + 1, i62 + 1, 2.0 ^ 62 })
    local got = sort_keys("f")
    assert.same({ 2 ^ 53, i53 + 1, 2.0 ^ 62, i62 + 1 }, got)
    assert.equal("float", math.type(got[1]))
    assert.equal("integer", math.type(got[2]))
    assert.equal("float", math.type(got[3]))
    assert.equal("integer", math.type(got[4]))
  end)

  it("orders strings of any bytes, the empty string first", function()
    local strs = { "", "\0", "a", "\127", "\128", "\195\169", "\255", "\255\255" }
    put_all("s", strs)
    assert.same(strs, sort_keys("s"))
  end)

  it("puts every number before every string", function()
    put_all("mix", { -5, 0, 99, 1e300, "", "0", "5", "a" })
    local got = sort_keys("mix")
    assert.same({ -5, 0, 99, 1e300, "", "0", "5", "a" }, got)
  end)

  it("accepts empty strings as partition and sort keys", function()
    local db = t.db
    assert(db:put_item({ PK = "", SK = "", v = 1 }))
    assert(db:put_item({ PK = "", SK = "x", v = 2 }))
    assert.equal(1, db:get_item({ PK = "", SK = "" }).v)
    assert.same({ "", "x" }, sort_keys(""))
    assert(db:delete_item({ PK = "", SK = "" }))
    assert.same({ "x" }, sort_keys(""))
  end)
end)
