-- The binding builds numbers and decimal values in C (core.number_parse,
-- core.decimal_parse, the decoder): they must be exactly what types.lua's
-- Lua code makes.  The reference is a second instance of types.lua loaded
-- over a core without the C constructors (so every path is Lua), compared
-- on a generated corpus of N strings -- valid ones across DynamoDB's range
-- and precision, and malformed ones.
local dynafile = require "dynafile"
local types = require "dynafile.types"
local core = require "dynafile.core"
local fs = dofile("spec/support/fs.lua")

local HAS_INTEGERS = math.type ~= nil

-- types.lua over a core without the C constructors and decoder types.
local function lua_only_types()
  local bare = {}
  for k, v in pairs(core) do bare[k] = v end
  bare.decimal_parse, bare.number_parse, bare.register_types = nil, nil, nil
  bare.decimal_mt = nil
  local saved = package.loaded["dynafile.core"]
  package.loaded["dynafile.core"] = bare
  local ok, m = pcall(dofile, "lua/dynafile/types.lua")
  package.loaded["dynafile.core"] = saved
  assert(ok, m)
  return m
end

local ref = lua_only_types()

local function rng(seed)
  local s = seed
  return function(n)
    s = (s * 1103515245 + 12345) % 2147483648
    return s % n
  end
end

-- N strings: plain and exponent forms, leading and trailing zeros, up to
-- 45 digits, exponents around both ends of DynamoDB's range, and syntax
-- DynamoDB refuses.
local function corpus()
  local r = rng(16)
  local list = {
    "0", "-0", "+0", "0.000", "0e99999999999", "1", "-1", "1.", ".5", "-.5",
    "1e", "e1", "+", "-", ".", "", " 1", "1 ", "1..2", "1e+", "1e-", "0x10",
    "inf", "-inf", "nan", "NaN", "Infinity", "1e5.5", "1ee5", "--1", "+-1",
    "9007199254740992", "9007199254740993", "-9007199254740993",
    "9223372036854775807", "9223372036854775808", "-9223372036854775808",
    "-9223372036854775809", "18446744073709551615", "18446744073709551616",
    "1E-130", "1E-131", "9.9999999999999999999999999999999999999E+125",
    "1E+126", "12345678901234567890123456789012345678",
    "123456789012345678901234567890123456789", "0.1", "0.30000000000000004",
    "1e20", "1e21", "123456789012345678", "1.5e300", "2e-300",
    "1e999999999999", "1e-999999999999", "000123.4500e-2",
  }
  for _ = 1, 3000 do
    local nd = r(46)
    local t = {}
    for i = 1, nd do t[i] = tostring(r(10)) end
    local digits = table.concat(t)
    local s = (r(3) == 0 and "-" or (r(8) == 0 and "+" or "")) .. digits
    if r(3) == 0 and nd > 0 then
      local at = r(nd + 1)
      s = s:sub(1, #s - nd + at) .. "." .. s:sub(#s - nd + at + 1)
    end
    if r(2) == 0 then
      s = s .. (r(2) == 0 and "e" or "E") .. ({ "", "+", "-" })[1 + r(3)] .. tostring(r(300))
    end
    list[#list + 1] = s
  end
  return list
end

local function same_number(a, b)
  if type(a) ~= type(b) then return false end
  if HAS_INTEGERS and type(a) == "number" and math.type(a) ~= math.type(b) then
    return false
  end
  return types.number_string(a) == ref.number_string(b)
end

describe("numbers made in C", function()
  it("dynafile.number gives what the Lua code gives, value and kind, on every string", function()
    local n = 0
    for _, s in ipairs(corpus()) do
      local ok_c, c = pcall(types.number, s)
      local ok_l, l = pcall(ref.number, s)
      assert.are.equal(ok_l, ok_c, s)
      if ok_c then
        assert.is_true(same_number(c, l), s)
        assert.are.equal(ref.type(l), types.type(c), s)
        n = n + 1
      else
        assert.are.equal(l, c, s) -- the same message
      end
      local p, pm = types.parse_number(s)
      if ok_c then assert.is_true(same_number(p, l), s) else assert.is_nil(p) end
      if not ok_c then assert.is_string(pm) end
    end
    assert.is_true(n > 1000)
  end)

  it("dynafile.decimal gives what the Lua code gives, on every string", function()
    for _, s in ipairs(corpus()) do
      local ok_c, c = pcall(types.decimal, s)
      local ok_l, l = pcall(ref.decimal, s)
      assert.are.equal(ok_l, ok_c, s)
      if ok_c then
        assert.is_true(types.is_decimal(c), s)
        assert.are.equal(tostring(l), tostring(c), s)
        assert.are.equal(l.sign, c.sign, s)
        assert.are.equal(l.digits, c.digits, s)
        assert.are.equal(l.exp, c.exp, s)
        assert.are.equal(l:tonumber(), c:tonumber(), s)
      else
        assert.are.equal(l, c, s)
      end
    end
  end)

  it("decimals made in C and in Lua compare and sort as numbers", function()
    local r = rng(7)
    local list = {}
    for _, s in ipairs(corpus()) do
      if pcall(types.decimal, s) then list[#list + 1] = s end
    end
    for _ = 1, 2000 do
      local a = list[1 + r(#list)]
      local b = list[1 + r(#list)]
      local ca, cb = types.decimal(a), types.decimal(b)
      -- the same numbers made by the Lua code, with this module's metatable
      local la = types.decimal(ref.number_string(ref.decimal(a)))
      local lb = types.decimal(ref.number_string(ref.decimal(b)))
      local want = ref.compare_numbers(ref.decimal(a), ref.decimal(b))
      assert.are.equal(want == 0, ca == cb, a .. " == " .. b)
      assert.are.equal(want == 0, ca == lb, a .. " == " .. b)
      assert.are.equal(want < 0, ca < cb, a .. " < " .. b)
      assert.are.equal(want <= 0, la <= cb, a .. " <= " .. b)
      assert.are.equal(want, types.compare_numbers(ca, lb), a .. " cmp " .. b)
    end
  end)
end)

describe("decimals read from storage", function()
  local dir, db
  before_each(function()
    dir = fs.tmpdir()
    db = assert(dynafile.open(dir, { pk = "PK", sk = "SK", sync = "off" }))
  end)
  after_each(function()
    db:close()
    fs.cleanup()
  end)

  it("come back as the value written, as keys and attributes, and find their item", function()
    local values = {}
    for _, s in ipairs(corpus()) do
      local ok, v = pcall(types.number, s)
      if ok and types.is_decimal(v) then values[#values + 1] = v end
      if #values >= 300 then break end
    end
    assert.is_true(#values >= 100)
    for i, v in ipairs(values) do
      db:put_item { PK = "p", SK = v, n = v, i = i }
    end
    local seen = 0
    local last
    for item in db:query("p") do
      seen = seen + 1
      assert.is_true(types.is_decimal(item.SK), tostring(item.SK) .. " " .. type(item.SK))
      assert.are.equal(item.SK, item.n)
      assert.are.equal(tostring(values[item.i]), tostring(item.SK))
      assert.is_true(item.SK == values[item.i])
      if last then assert.is_true(last < item.SK) end
      last = item.SK
      -- the decoded key finds and deletes its item
      assert.is_truthy(db:get_item { PK = "p", SK = item.SK })
    end
    -- duplicates in the corpus are one item
    local distinct = {}
    for _, v in ipairs(values) do distinct[tostring(v)] = true end
    local n = 0
    for _ in pairs(distinct) do n = n + 1 end
    assert.are.equal(n, seen)
    for item in db:query("p") do
      db:delete_item { PK = "p", SK = item.SK }
    end
    assert.is_nil(db:query("p")())
  end)

  it("a decoded decimal used again as a value is stored as the same number", function()
    local d = types.decimal("1.0000000000000000000000000001")
    db:put_item { PK = "p", SK = 1, v = d }
    local got = db:get_item { PK = "p", SK = 1 }
    db:put_item { PK = "p", SK = 2, v = got.v, s = dynafile.set { got.v, d } }
    local again = db:get_item { PK = "p", SK = 2 }
    assert.are.equal("1.0000000000000000000000000001", tostring(again.v))
    assert.are.equal(1, #again.s) -- got.v and d are one element
    assert.are.equal("NS", dynafile.type(again.s))
    assert.is_true(again.s:contains(d))
  end)
end)
