-- Lua values <-> DynamoDB AttributeValues: every type, without loss, and
-- DynamoDB's messages for what it refuses.
local dynafile = require "dynafile"
local ddbjson = require "dynafile.ddbjson"
local types = require "dynafile.types"

local HAS_INTEGERS = math.type ~= nil

local function err_of(f, ...)
  local ok, e = pcall(f, ...)
  assert.is_false(ok)
  assert.is_true(ddbjson.is_error(e), tostring(e))
  return e
end

local function refuses(av, code, message)
  local e = err_of(ddbjson.decode_value, av)
  assert.are.equal(code, e.code)
  assert.are.equal(message, e.message)
  assert.are.equal(code .. ": " .. message, tostring(e))
end

describe("ddbjson.decode_value", function()
  it("decodes every scalar type", function()
    assert.are.equal("x", ddbjson.decode_value({ S = "x" }))
    assert.are.equal(42, ddbjson.decode_value({ N = "42" }))
    if HAS_INTEGERS then
      assert.are.equal("integer", math.type(ddbjson.decode_value({ N = "42" })))
    end
    assert.are.equal(-1.5, ddbjson.decode_value({ N = "-15e-1" }))
    assert.are.equal(dynafile.binary("\0\1\2\255"), ddbjson.decode_value({ B = "AAEC/w==" }))
    assert.are.equal(true, ddbjson.decode_value({ BOOL = true }))
    assert.are.equal(false, ddbjson.decode_value({ BOOL = false }))
    assert.are.equal(dynafile.null, ddbjson.decode_value({ NULL = true }))
  end)

  it("keeps 38 digits, and the extremes, exactly", function()
    local d38 = "12345678901234567890123456789012345678"
    local v = ddbjson.decode_value({ N = d38 })
    assert.is_true(types.is_decimal(v))
    assert.are.equal(d38, tostring(v))
    local tiny = ddbjson.decode_value({ N = "1e-130" })
    assert.are.equal("0." .. ("0"):rep(129) .. "1", dynafile.number_string(tiny))
    local max = ddbjson.decode_value({ N = "9.9999999999999999999999999999999999999E+125" })
    assert.are.equal(("9"):rep(38) .. ("0"):rep(88), dynafile.number_string(max))
  end)

  it("decodes sets into set values", function()
    local ss = ddbjson.decode_value({ SS = { "b", "a" } })
    assert.are.equal("SS", dynafile.type(ss))
    assert.is_true(ss:contains("a"))
    local ns = ddbjson.decode_value({
      NS = { "1", "0.1", "12345678901234567890123456789012345678" } })
    assert.are.equal("NS", dynafile.type(ns))
    assert.is_true(ns:contains(0.1))
    assert.is_true(ns:contains(dynafile.decimal("12345678901234567890123456789012345678")))
    local bs = ddbjson.decode_value({ BS = { "YQ==", "Yg==" } })
    assert.are.equal("BS", dynafile.type(bs))
    assert.is_true(bs:contains(dynafile.binary("b")))
  end)

  it("decodes lists and maps, an empty list as a list", function()
    local v = ddbjson.decode_value({ M = { a = { L = { { S = "x" }, { N = "1" } } }, e = { L = {} },
      m = { M = {} } } })
    assert.are.same({ "x", 1 }, v.a)
    assert.are.equal("L", dynafile.type(v.e))
    assert.are.equal("M", dynafile.type(v.m))
  end)

  it("refuses malformed values with DynamoDB's messages", function()
    local INVALID = "One or more parameter values were invalid: "
    local EMPTY = "Supplied AttributeValue is empty, must contain exactly one of the " ..
      "supported datatypes"
    refuses({}, "ValidationException", EMPTY)
    refuses("x", "ValidationException", EMPTY)
    refuses({ X = "1" }, "ValidationException", EMPTY)
    refuses({ M = { a = {} } }, "ValidationException", EMPTY)
    refuses({ L = { {} } }, "ValidationException", EMPTY)
    refuses({ S = "a", N = "1" }, "ValidationException",
      "Supplied AttributeValue has more than one datatypes set, must contain exactly one " ..
      "of the supported datatypes")
    refuses({ NULL = false }, "ValidationException",
      INVALID .. "Null attribute value types must have the value of true")
    refuses({ SS = {} }, "ValidationException", INVALID .. "An string set  may not be empty")
    refuses({ NS = {} }, "ValidationException", INVALID .. "An number set  may not be empty")
    refuses({ BS = {} }, "ValidationException", INVALID .. "Binary sets should not be empty")
    refuses({ SS = { "a", "a" } }, "ValidationException",
      INVALID .. "Input collection [a, a] contains duplicates.")
    refuses({ BS = { "Yg==", "Yg==" } }, "ValidationException",
      INVALID .. "Input collection [Yg==, Yg==]of type BS contains duplicates.")
    refuses({ NS = { "1", "1.0" } }, "ValidationException", "Input collection contains duplicates")
    refuses({ N = "b" }, "ValidationException",
      "The parameter cannot be converted to a numeric value: b")
    refuses({ N = "" }, "ValidationException",
      "The parameter cannot be converted to a numeric value")
    refuses({ NS = { "1", "b" } }, "ValidationException",
      "The parameter cannot be converted to a numeric value: b")
    refuses({ N = "123456789012345678901234567890123456789" }, "ValidationException",
      "Attempting to store more than 38 significant digits in a Number")
    refuses({ N = "1e126" }, "ValidationException",
      "Number overflow. Attempting to store a number with magnitude larger than supported range")
    refuses({ N = "-1e-131" }, "ValidationException",
      "Number underflow. Attempting to store a number with magnitude smaller than supported " ..
      "range")
    refuses({ N = "NaN" }, "ValidationException",
      "The parameter cannot be converted to a numeric value: NaN")
    refuses({ N = 5 }, "SerializationException", "NUMBER_VALUE cannot be converted to String")
    refuses({ B = "abc" }, "SerializationException",
      "Base64 encoded length is expected a multiple of 4 bytes but found: 3")
    refuses({ B = "ab!d" }, "SerializationException", "Invalid Base64 character")
  end)

  it("accepts 31 levels of nesting below an attribute and refuses 32", function()
    local function deep(n)
      local v = { S = "leaf" }
      for _ = 1, n do v = { M = { n = v } } end
      return v
    end
    local v = ddbjson.decode_value(deep(31))
    local depth = 0
    while type(v) == "table" do
      v = v.n
      depth = depth + 1
    end
    assert.are.equal(31, depth)
    local e = err_of(ddbjson.decode_value, deep(32))
    assert.matches("^Nesting Levels have exceeded supported limits", e.message)
  end)
end)

describe("ddbjson.encode_value", function()
  it("encodes every type", function()
    assert.are.same({ S = "x" }, ddbjson.encode_value("x"))
    assert.are.same({ N = "42" }, ddbjson.encode_value(42))
    assert.are.same({ N = "0.1" }, ddbjson.encode_value(0.1))
    assert.are.same({ N = "1" }, ddbjson.encode_value(1.0))
    assert.are.same({ N = "0" }, ddbjson.encode_value(-0.0))
    assert.are.same({ N = "100000000000000000000" }, ddbjson.encode_value(1e20))
    assert.are.same({ B = "AAEC/w==" }, ddbjson.encode_value(dynafile.binary("\0\1\2\255")))
    assert.are.same({ BOOL = false }, ddbjson.encode_value(false))
    assert.are.same({ NULL = true }, ddbjson.encode_value(dynafile.null))
    assert.are.same({ SS = { "a", "b" } }, ddbjson.encode_value(dynafile.set({ "b", "a" })))
    assert.are.same({ NS = { "-1", "0.5", "10" } },
      ddbjson.encode_value(dynafile.set({ 10, -1, 0.5 })))
    assert.are.same({ BS = { "YQ==", "Yg==" } },
      ddbjson.encode_value(dynafile.set({ "b", "a" }, "B")))
    assert.are.same({ L = { { S = "a" }, { N = "1" } } }, ddbjson.encode_value({ "a", 1 }))
    assert.are.same({ M = { a = { S = "x" } } }, ddbjson.encode_value({ a = "x" }))
    assert.are.same({ M = {} }, ddbjson.encode_value({}))
    local l = ddbjson.encode_value(dynafile.array {})
    assert.are.same({ L = {} }, l)
    assert.are.equal(types.array_mt, getmetatable(l.L))
  end)

  it("refuses what DynamoDB cannot hold", function()
    local e = err_of(ddbjson.encode_value, 0 / 0)
    assert.are.equal("ValidationException", e.code)
    e = err_of(ddbjson.encode_value, math.huge)
    assert.are.equal("ValidationException", e.code)
    e = err_of(ddbjson.encode_value, 1e300)
    assert.matches("^Number overflow", e.message)
    e = err_of(ddbjson.encode_value, 5e-324)
    assert.matches("^Number underflow", e.message)
    e = err_of(ddbjson.encode_value, dynafile.set({}, "S"))
    assert.are.equal("One or more parameter values were invalid: An string set  may not be empty",
      e.message)
    err_of(ddbjson.encode_value, print)
    err_of(ddbjson.encode_value, nil)
    err_of(ddbjson.encode_item, { a = { [true] = 1 } })
    err_of(ddbjson.encode_item, "x")
  end)
end)

describe("ddbjson items", function()
  it("round-trips an item of every type", function()
    local item = {
      PK = "p", SK = 1, s = "text", n = 12.5,
      big = dynafile.decimal("12345678901234567890123456789012345678"),
      b = dynafile.binary("\255\0"), t = true, f = false, z = dynafile.null,
      ss = dynafile.set({ "x", "y" }), ns = dynafile.set({ 1, 2.5 }),
      bs = dynafile.set({ "\1", "\2" }, "B"), l = { 1, "two", { three = 3 } },
      m = { deep = { er = { 1 } } }, el = dynafile.array {}, em = {},
    }
    local av = ddbjson.encode_item(item)
    local back = ddbjson.decode_item(av)
    assert.are.same(ddbjson.encode_item(back), av)
    assert.are.equal(item.big, back.big)
    assert.are.equal(item.b, back.b)
    assert.are.equal(item.ss, back.ss)
    assert.are.equal(item.ns, back.ns)
    assert.are.equal(item.bs, back.bs)
    assert.are.equal("L", dynafile.type(back.el))
    assert.are.equal("M", dynafile.type(back.em))
  end)

  it("reproduces generated AttributeValues with canonical numbers", function()
    local seed = 5
    local function r(n)
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed % n
    end
    local function number()
      local nd = 1 + r(38)
      local t = { tostring(1 + r(9)) }
      for i = 2, nd do t[i] = tostring(r(10)) end
      return (r(3) == 0 and "-" or "") .. table.concat(t) .. "e" .. (r(250) - 125 - nd)
    end
    local function value(depth)
      local k = r(depth > 3 and 7 or 10)
      if k == 0 then return { S = "s" .. r(100) } end
      if k == 1 then return { N = number() } end
      if k == 2 then return { B = ddbjson.base64_encode(string.char(r(256), r(256))) } end
      if k == 3 then return { BOOL = r(2) == 0 } end
      if k == 4 then return { NULL = true } end
      if k == 5 then return { SS = { "a" .. r(5), "b" .. r(5) } } end
      if k == 6 then return { NS = { number(), number() } } end
      if k == 7 then
        local l = {}
        for i = 1, r(4) do l[i] = value(depth + 1) end
        return { L = l }
      end
      local m = {}
      for i = 1, r(4) do m["k" .. i] = value(depth + 1) end
      return { M = m }
    end
    local function canonical(av)
      local k, v = next(av)
      if k == "N" then return { N = tostring(dynafile.decimal(v)) } end
      if k == "NS" or k == "SS" then
        local out = {}
        for i, x in ipairs(v) do out[i] = k == "NS" and dynafile.decimal(x) or x end
        table.sort(out)
        for i, x in ipairs(out) do out[i] = tostring(x) end
        return { [k] = out }
      end
      if k == "L" then
        local out = {}
        for i, x in ipairs(v) do out[i] = canonical(x) end
        return { L = out }
      end
      if k == "M" then
        local out = {}
        for n, x in pairs(v) do out[n] = canonical(x) end
        return { M = out }
      end
      return av
    end
    for _ = 1, 500 do
      local av = value(0)
      local ok, v = pcall(ddbjson.decode_value, av)
      if ok then
        assert.are.same(canonical(av), ddbjson.encode_value(v))
      else
        -- the generator can make duplicate set elements: DynamoDB refuses those
        assert.matches("duplicates", v.message)
      end
    end
  end)
end)

describe("ddbjson base64", function()
  it("encodes and decodes every length", function()
    for n = 0, 40 do
      local s = {}
      for i = 1, n do s[i] = string.char((i * 37) % 256) end
      s = table.concat(s)
      assert.are.equal(s, ddbjson.base64_decode(ddbjson.base64_encode(s)))
    end
    assert.are.equal("", ddbjson.base64_encode(""))
    assert.is_nil(ddbjson.base64_decode("A==="))
    assert.is_nil(ddbjson.base64_decode("QQ=A"))
  end)
end)

describe("dynafile.json.valid_utf8", function()
  local json = require "dynafile.json"

  -- under LuaJIT the ASCII test reads a long string eight bytes at a time
  -- and then the rest: a byte above 127 is found at every position of
  -- short and long strings of every length around the word boundaries
  it("finds a non-ASCII byte at any position of any length", function()
    local lengths = {}
    for n = 0, 40 do lengths[#lengths + 1] = n end
    for n = 250, 270 do lengths[#lengths + 1] = n end
    for _, n in ipairs(lengths) do
      local s = string.rep("a", n)
      assert.is_true(json.valid_utf8(s), n)
      for k = 1, n do
        local before, after = s:sub(1, k - 1), s:sub(k + 1)
        assert.is_false(json.valid_utf8(before .. "\200" .. after), n .. "/" .. k)
        assert.is_false(json.valid_utf8(before .. "\255" .. after), n .. "/" .. k)
        assert.is_true(json.valid_utf8(before .. "\195\169" .. after), n .. "/" .. k)
      end
    end
  end)

  it("refuses overlong forms, surrogates and code points past U+10FFFF", function()
    local pad = string.rep("x", 13)
    for _, bad in ipairs { "\192\175", "\224\128\175", "\237\160\128", "\244\144\128\128",
      "\195", "\128" } do
      assert.is_false(json.valid_utf8(pad .. bad), bad)
      assert.is_false(json.valid_utf8(bad .. pad), bad)
    end
    assert.is_true(json.valid_utf8(pad .. "\244\143\191\191" .. pad))
  end)
end)
