-- DynamoDB's value types in Lua: decimal values, numbers and their
-- canonical strings, binary values, sets, dynafile.type.
local dynafile = require "dynafile"
local types = require "dynafile.types"

local HAS_INTEGERS = math.type ~= nil
local IS_LUAJIT = type(jit) == "table"
local ffi = IS_LUAJIT and require "ffi" or nil

-- A reproducible generator, the same on every Lua version.
local function rng(seed)
  local s = seed
  return function(n)
    s = (s * 1103515245 + 12345) % 2147483648
    return s % n
  end
end

local function decimal_string(r)
  -- sign, 1..38 digits, exponent keeping the value in DynamoDB's range
  local nd = 1 + r(38)
  local t = { tostring(1 + r(9)) }
  for i = 2, nd do t[i] = tostring(r(10)) end
  local e = r(250) - 125 - nd
  return (r(2) == 0 and "-" or "") .. table.concat(t) .. "e" .. e
end

describe("dynafile.decimal", function()
  it("normalises as DynamoDB does: no exponent, no leading or trailing zeros", function()
    assert.are.equal("12500", tostring(dynafile.decimal("12.5e3")))
    assert.are.equal("1.23", tostring(dynafile.decimal("0001.2300")))
    assert.are.equal("0", tostring(dynafile.decimal("-0")))
    assert.are.equal("0", tostring(dynafile.decimal("0e1000")))
    assert.are.equal("0", tostring(dynafile.decimal("-0.000")))
    assert.are.equal("-0.001", tostring(dynafile.decimal("-1e-3")))
    assert.are.equal("3", tostring(dynafile.decimal("+3")))
    assert.are.equal("0.123", tostring(dynafile.decimal(".123")))
    assert.are.equal("100000", tostring(dynafile.decimal("1e+5")))
    assert.are.equal("-1740000000000000000000000000000000000000",
      tostring(dynafile.decimal("-17.4E38")))
    assert.are.equal("1", tostring(dynafile.decimal("1.")))
  end)

  it("holds DynamoDB's extremes exactly", function()
    assert.are.equal("0." .. ("0"):rep(129) .. "1", tostring(dynafile.decimal("1E-130")))
    assert.are.equal("-0." .. ("0"):rep(129) .. "1", tostring(dynafile.decimal("-1e-130")))
    local max = "9.9999999999999999999999999999999999999E+125"
    assert.are.equal(("9"):rep(38) .. ("0"):rep(88), tostring(dynafile.decimal(max)))
    local d38 = "12345678901234567890123456789012345678"
    assert.are.equal(d38, tostring(dynafile.decimal(d38)))
    assert.are.equal("0.0000000" .. d38, tostring(dynafile.decimal("0.0000000" .. d38)))
  end)

  it("refuses what DynamoDB refuses, with DynamoDB's messages", function()
    local cases = {
      { "dog", "The parameter cannot be converted to a numeric value: dog" },
      { "", "The parameter cannot be converted to a numeric value" },
      { " 1", "The parameter cannot be converted to a numeric value:  1" },
      { "1 ", "The parameter cannot be converted to a numeric value: 1 " },
      { "NaN", "The parameter cannot be converted to a numeric value: NaN" },
      { "Infinity", "The parameter cannot be converted to a numeric value: Infinity" },
      { "-Infinity", "The parameter cannot be converted to a numeric value: -Infinity" },
      { "1e", "The parameter cannot be converted to a numeric value: 1e" },
      { ".", "The parameter cannot be converted to a numeric value: ." },
      { "1.2.3", "The parameter cannot be converted to a numeric value: 1.2.3" },
      { "0x10", "The parameter cannot be converted to a numeric value: 0x10" },
      { "1e126", types.MSG_OVERFLOW },
      { "-1e126", types.MSG_OVERFLOW },
      { "11e125", types.MSG_OVERFLOW },
      { "1e99999999999999999999", types.MSG_OVERFLOW },
      { "1e-131", types.MSG_UNDERFLOW },
      { "-0.9e-130", types.MSG_UNDERFLOW },
      { "123456789012345678901234567890123456789", types.MSG_DIGITS },
      { "-1.23456789012345678901234567890123456789", types.MSG_DIGITS },
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(dynafile.decimal, c[1])
      assert.is_false(ok, c[1])
      local msg = err:gsub("^.-dynafile%.decimal", "dynafile.decimal")
      assert.are.equal("dynafile.decimal: " .. c[2], msg)
    end
    -- trailing zeros are not significant digits
    assert.are.equal("1" .. ("0"):rep(39), tostring(dynafile.decimal("1" .. ("0"):rep(39))))
    assert.are.equal("1", tostring(dynafile.decimal("1." .. ("0"):rep(60))))
  end)

  it("refuses NaN, the infinities and floats beyond DynamoDB's range", function()
    assert.has_error(function() dynafile.decimal(0 / 0) end)
    assert.has_error(function() dynafile.decimal(math.huge) end)
    assert.has_error(function() dynafile.decimal(1e300) end)
    assert.has_error(function() dynafile.decimal(5e-324) end)
    assert.has_error(function() dynafile.decimal({}) end)
  end)

  it("takes a float as the integer it is in the int64 range, else its shortest decimal", function()
    assert.are.equal("0.1", tostring(dynafile.decimal(0.1)))
    assert.are.equal("1", tostring(dynafile.decimal(1.0)))
    assert.are.equal("-2.5", tostring(dynafile.decimal(-2.5)))
    assert.are.equal("0.30000000000000004", tostring(dynafile.decimal(0.1 + 0.2)))
    assert.are.equal("1152921504606846976", tostring(dynafile.decimal(2.0 ^ 60)))
    assert.are.equal("-9223372036854775808", tostring(dynafile.decimal(-2.0 ^ 63)))
    assert.are.equal("9223372036854776000", tostring(dynafile.decimal(2.0 ^ 63)))
    assert.are.equal("18446744073709552000", tostring(dynafile.decimal(2.0 ^ 64)))
    local d = dynafile.decimal("7")
    assert.are.equal(d, dynafile.decimal(d))
  end)

  it("compares and sorts numerically", function()
    local d = dynafile.decimal
    assert.is_true(d("1") < d("1.0000000000000000000000000000000000001"))
    assert.is_true(d("-1") < d("-0.99999999999999999999999999999999999999"))
    assert.is_true(d("-1e125") < d("-1e-130"))
    assert.is_true(d("-1e-130") < d("0"))
    assert.is_true(d("0") < d("1e-130"))
    assert.is_true(d("0.1") <= d("0.10"))
    assert.is_true(d("0.1") == d("0.10"))
    assert.is_false(d("0.1") == d("0.10000000000000000001"))
    assert.is_true(d("99") < d("100"))
    assert.is_true(d("-100") < d("-99"))
    assert.is_false(d("2") < d("2"))
    local list = { d("3"), d("-1.5"), d("1e-130"), d("0"), d("-1e125"), d("2.25"), d("2.2") }
    table.sort(list)
    local got = {}
    for i, v in ipairs(list) do got[i] = tostring(v) end
    assert.are.same({ "-1" .. ("0"):rep(125), "-1.5", "0", "0." .. ("0"):rep(129) .. "1",
      "2.2", "2.25", "3" }, got)
  end)

  it("orders generated decimals as their digits say", function()
    local r = rng(7)
    for _ = 1, 2000 do
      -- two values sharing a random prefix, differing in one digit
      local nd = 2 + r(36)
      local digits = {}
      for i = 1, nd do digits[i] = tostring(r(10)) end
      digits[1] = tostring(1 + r(9))
      local a = table.concat(digits)
      local k = 1 + r(nd)
      local b = digits
      b[k] = tostring((tonumber(b[k]) + 1 + r(8)) % 10)
      if k == 1 and b[1] == "0" then b[1] = "1" end
      b = table.concat(b)
      local e = r(200) - 100 - nd
      local neg = r(2) == 0
      local sa = (neg and "-" or "") .. a .. "e" .. e
      local sb = (neg and "-" or "") .. b .. "e" .. e
      local expect = a < b
      if neg then expect = not expect end
      assert.are.equal(expect, dynafile.decimal(sa) < dynafile.decimal(sb), sa .. " " .. sb)
      assert.are.equal(not expect, dynafile.decimal(sb) < dynafile.decimal(sa), sa .. " " .. sb)
    end
  end)

  it("orders like the Lua numbers it stands for", function()
    local r = rng(11)
    local function float()
      local m = (r(2000001) - 1000000) / (1 + r(1000))
      return m * 10 ^ (r(40) - 20)
    end
    for _ = 1, 2000 do
      local a, b = float(), float()
      if r(10) == 0 then b = a end
      local da, db = dynafile.decimal(a), dynafile.decimal(b)
      assert.are.equal(a < b, da < db, tostring(a) .. " " .. tostring(b))
      assert.are.equal(a == b, da == db, tostring(a) .. " " .. tostring(b))
      assert.are.equal(a <= b, da <= db, tostring(a) .. " " .. tostring(b))
    end
  end)

  it("gives its nearest Lua number on request", function()
    assert.are.equal(0.1, dynafile.decimal("0.1"):tonumber())
    assert.are.equal(1e-130, dynafile.decimal("1e-130"):tonumber())
  end)
end)

describe("dynafile.number", function()
  it("gives a Lua number when the value is exact", function()
    assert.are.equal(42, dynafile.number("42"))
    assert.are.equal(1.5, dynafile.number("1.50"))
    assert.are.equal(0.1, dynafile.number("0.1"))
    assert.are.equal(-1000, dynafile.number("-1e3"))
    assert.are.equal(1e125, dynafile.number("1e125"))
    assert.are.equal(1e-130, dynafile.number("1e-130"))
    assert.are.equal(0, dynafile.number("-0"))
    assert.are.equal("number", type(dynafile.number("9007199254740992")))
    if HAS_INTEGERS then
      assert.are.equal("integer", math.type(dynafile.number("42")))
      assert.are.equal("integer", math.type(dynafile.number("1e3")))
      assert.are.equal("float", math.type(dynafile.number("1.5")))
      assert.are.equal("float", math.type(dynafile.number("1e20")))
    end
  end)

  it("gives a decimal value when no Lua number holds the value", function()
    for _, s in ipairs({ "0.10000000000000001", "12345678901234567890123456789012345678",
        "1.0000000000000000000000000000000000001", "18446744073709551616",
        "9223372036854775808", "-9223372036854775809" }) do
      local v = dynafile.number(s)
      assert.is_true(types.is_decimal(v), s)
      assert.are.equal(dynafile.decimal(s), v)
    end
  end)

  it("keeps integers beyond 2^53 exact on every Lua", function()
    for _, s in ipairs({ "9007199254740993", "9223372036854775807",
        "1152921504606846977" }) do
      local v = dynafile.number(s)
      assert.are.equal(s, dynafile.number_string(v))
      if HAS_INTEGERS then
        assert.are.equal("integer", math.type(v), s)
      elseif IS_LUAJIT then
        assert.is_true(ffi.istype("int64_t", v), s)
      else
        assert.is_true(types.is_decimal(v), s)
      end
      assert.are.equal("N", dynafile.type(v))
    end
    -- an integer a double holds exactly is a plain number on 5.1 too
    -- (an integer on 5.3+, int64_t cdata on LuaJIT)
    for _, s in ipairs({ "9007199254740994", "1152921504606846976",
        "-9223372036854775808" }) do
      local v = dynafile.number(s)
      if not HAS_INTEGERS and not IS_LUAJIT then assert.are.equal("number", type(v)) end
      assert.are.equal(s, dynafile.number_string(v))
    end
  end)

  it("raises DynamoDB's message for what is no number", function()
    local ok, err = pcall(dynafile.number, "1e400")
    assert.is_false(ok)
    assert.matches("dynafile.number: Number overflow", err, 1, true)
    assert.has_error(function() dynafile.number(5) end)
    assert.are.equal(nil, (types.parse_number("x")))
    assert.are.equal(types.MSG_NOT_NUMBER .. ": x", select(2, types.parse_number("x")))
  end)

  it("round-trips generated N strings through their Lua value", function()
    local r = rng(3)
    for _ = 1, 3000 do
      local s = decimal_string(r)
      local canonical = tostring(dynafile.decimal(s))
      local v = dynafile.number(s)
      assert.are.equal(canonical, dynafile.number_string(v), s)
      assert.are.equal(canonical, dynafile.number_string(dynafile.number(canonical)), s)
    end
  end)
end)

describe("dynafile.number_string", function()
  it("gives DynamoDB's canonical digits", function()
    assert.are.equal("0.1", dynafile.number_string(0.1))
    assert.are.equal("1", dynafile.number_string(1.0))
    assert.are.equal("0", dynafile.number_string(-0.0))
    assert.are.equal("100000000000000000000", dynafile.number_string(1e20))
    assert.are.equal("0.0000001", dynafile.number_string(1e-7))
    assert.are.equal("1152921504606846976", dynafile.number_string(2.0 ^ 60))
    assert.are.equal("-4611686018427387904", dynafile.number_string(-2.0 ^ 62))
    assert.are.equal("9223372036854776000", dynafile.number_string(2.0 ^ 63))
    assert.are.equal("-12.5", dynafile.number_string(dynafile.decimal("-1.25e1")))
    assert.are.equal("9007199254740993",
      dynafile.number_string(dynafile.number("9007199254740993")))
    if HAS_INTEGERS then
      assert.are.equal("1152921504606846976", dynafile.number_string(math.tointeger(2 ^ 60)))
      assert.are.equal("-9223372036854775808", dynafile.number_string(math.mininteger))
    end
  end)

  it("refuses NaN and the infinities", function()
    assert.has_error(function() dynafile.number_string(0 / 0) end)
    assert.has_error(function() dynafile.number_string(-math.huge) end)
    assert.has_error(function() dynafile.number_string("1") end)
  end)

  it("gives the digits of floats beyond DynamoDB's range, which it marks", function()
    assert.are.equal("1" .. ("0"):rep(300), dynafile.number_string(1e300))
    assert.is_false(types.number_in_range(1e300))
    assert.is_true(types.number_in_range(1e125))
    assert.is_false(types.number_in_range(1e-131))
  end)
end)

describe("dynafile.binary", function()
  it("holds bytes, compares them, and is of type B", function()
    local b = dynafile.binary("\0\1\255")
    assert.are.equal("\0\1\255", b:bytes())
    assert.are.equal(3, b:len())
    assert.are.equal("B", dynafile.type(b))
    assert.are.equal(dynafile.binary("\0\1\255"), b)
    assert.are_not.equal(dynafile.binary("\0\1"), b)
    assert.is_true(dynafile.binary("a") < dynafile.binary("b"))
    assert.are.equal("", dynafile.binary(""):bytes())
    assert.has_error(function() dynafile.binary(5) end)
    assert.are.equal(b, dynafile.binary(b))
  end)
end)

describe("dynafile.set", function()
  it("makes string, number and binary sets", function()
    local ss = dynafile.set({ "a", "b" })
    assert.are.equal("SS", dynafile.type(ss))
    assert.are.same({ "a", "b" }, { ss[1], ss[2] })
    assert.are.equal(2, #ss)
    local ns = dynafile.set({ 1, 2.5, dynafile.decimal("1e-130") })
    assert.are.equal("NS", dynafile.type(ns))
    local bs = dynafile.set({ "x", dynafile.binary("y") }, "B")
    assert.are.equal("BS", dynafile.type(bs))
    assert.are.equal(dynafile.binary("x"), bs[1])
    assert.are.equal("BS", dynafile.type(dynafile.set({ dynafile.binary("y") })))
  end)

  it("drops duplicates, numbers compared by value", function()
    local ns = dynafile.set({ 1, 1.0, dynafile.decimal("1.00"), 2 })
    assert.are.equal(2, #ns)
    assert.are.equal(2, #dynafile.set({ "a", "a", "b" }))
    assert.are.equal(1, #dynafile.set({ "a", dynafile.binary("a") }, "B"))
  end)

  it("answers membership", function()
    local ns = dynafile.set({ 1, 0.1 })
    assert.is_true(ns:contains(1.0))
    assert.is_true(ns:contains(dynafile.decimal("0.1")))
    assert.is_false(ns:contains(0.10000000000000002))
    assert.is_false(ns:contains("1"))
    local ss = dynafile.set({ "a" })
    assert.is_true(ss:contains("a"))
    assert.is_false(ss:contains(dynafile.binary("a")))
    local bs = dynafile.set({ "a" }, "B")
    assert.is_true(bs:contains(dynafile.binary("a")))
  end)

  it("adds and deletes elements", function()
    local s = dynafile.set({}, "S")
    assert.are.equal("SS", dynafile.type(s))
    s:add("a"):add("b"):add("a")
    assert.are.equal(2, #s)
    s:delete("a")
    assert.are.same({ "b" }, { s[1], s[2] })
    assert.has_error(function() s:add(1) end)
  end)

  it("compares as sets", function()
    assert.are.equal(dynafile.set({ "a", "b" }), dynafile.set({ "b", "a" }))
    assert.are_not.equal(dynafile.set({ "a", "b" }), dynafile.set({ "a" }))
    assert.are_not.equal(dynafile.set({ "1" }), dynafile.set({ 1 }))
  end)

  it("refuses elements of the wrong kind and unknown kinds", function()
    assert.has_error(function() dynafile.set({ "a", 1 }) end)
    assert.has_error(function() dynafile.set({ 1, "a" }) end)
    assert.has_error(function() dynafile.set({ true }) end)
    assert.has_error(function() dynafile.set({ 0 / 0 }) end)
    assert.has_error(function() dynafile.set({}) end)
    assert.has_error(function() dynafile.set({ "a" }, "X") end)
    assert.has_error(function() dynafile.set("a") end)
  end)
end)

describe("dynafile.type", function()
  it("names every DynamoDB type", function()
    assert.are.equal("S", dynafile.type("x"))
    assert.are.equal("N", dynafile.type(1))
    assert.are.equal("N", dynafile.type(1.5))
    assert.are.equal("N", dynafile.type(dynafile.decimal("1")))
    assert.are.equal("BOOL", dynafile.type(false))
    assert.are.equal("NULL", dynafile.type(dynafile.null))
    assert.are.equal("M", dynafile.type({}))
    assert.are.equal("M", dynafile.type({ a = 1 }))
    assert.are.equal("L", dynafile.type({ 1, 2 }))
    assert.are.equal("L", dynafile.type(dynafile.array {}))
    assert.are.equal("M", dynafile.type({ 1, 2, x = 3 }))
    if IS_LUAJIT then assert.are.equal("N", dynafile.type(ffi.new("int64_t", 5))) end
  end)

  it("is nil for what no item holds", function()
    assert.is_nil(dynafile.type(nil))
    assert.is_nil(dynafile.type(0 / 0))
    assert.is_nil(dynafile.type(print))
    assert.is_nil(dynafile.type(coroutine.create(function() end)))
  end)
end)
