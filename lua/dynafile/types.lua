--- dynafile.types: DynamoDB's value types in Lua.
--
-- Every DynamoDB type has one Lua form, which a read gives and a write
-- takes back unchanged:
--
--  * S: a string.
--  * N: a Lua number when it holds the value exactly, else a decimal value
--    (`dynafile.decimal`); under LuaJIT integers beyond 2^53 are `int64_t`
--    cdata.
--  * B: a binary value (`dynafile.binary(s)`): `b:bytes()`, `#b`, `==`.
--  * BOOL: a boolean.  NULL: `dynafile.null`.
--  * M: a table.  L: a table with keys 1..n, or `dynafile.array{}`.
--  * SS, NS, BS: a set value (`dynafile.set(list [, kind])`): distinct
--    elements at 1..n, `s:contains(v)`.
--
-- Numbers.  The value of every number is a decimal: a Lua integer is its
-- digits; a float that is an integer in the int64 range is that integer
-- (2^60 is "1152921504606846976", as 1 << 60 == 2^60 in Lua), any other
-- float the shortest decimal that reads back as the same float (at most
-- 17 significant digits), so 0.1 is "0.1" and 1.0 is "1"; a decimal value
-- is its digits.  DynamoDB numbers have at most 38
-- significant digits and a magnitude from 1E-130 to
-- 9.9999999999999999999999999999999999999E+125; decimal values are kept to
-- that range (Lua floats beyond it, and the infinities, can be stored by
-- the Lua API but have no DynamoDB form).  NaN is no number.
--
-- Invariant: a decimal value is normalised at construction (sign, digits
-- without leading or trailing zeros, exponent) and never changes, so equal
-- numbers have equal fields and `tostring` gives DynamoDB's canonical
-- string: plain notation, no exponent, no leading or trailing zeros, "0"
-- for zero (also for -0).
-- @module dynafile.types

local core = require "dynafile.core"

local type, tostring, tonumber, error, pairs, ipairs =
  type, tostring, tonumber, error, pairs, ipairs
local setmetatable, getmetatable, rawequal, pcall, require =
  setmetatable, getmetatable, rawequal, pcall, require
local string_format, string_rep, string_match, string_sub, string_byte =
  string.format, string.rep, string.match, string.sub, string.byte
local string_gsub = string.gsub
local table_concat = table.concat
local math_type = math.type -- nil before Lua 5.3
local math_huge, math_floor = math.huge, math.floor

local M = {}

local NULL = core.null
local ARRAY_MT = core.array_mt

-- LuaJIT's boxed 64-bit integers.
local ffi
do
  local ok, f = pcall(require, "ffi")
  if ok and type(f) == "table" and f.istype then ffi = f end
end

-- Does this Lua have a separate integer subtype (5.3+)?
local HAS_INTEGERS = math_type ~= nil
-- 2^63: a float below it in magnitude (and -2^63) that is an integer is
-- the int64 of the same value.
local INT64_END = 2 ^ 63

-- DynamoDB's limits on numbers.
local MAX_DIGITS = 38
local MAX_EXP = 125   -- of the leading digit: 9.99..E+125
local MIN_EXP = -130  -- 1E-130

-- DynamoDB's messages.
local MSG_DIGITS = "Attempting to store more than 38 significant digits in a Number"
local MSG_OVERFLOW = "Number overflow. Attempting to store a number with magnitude " ..
  "larger than supported range"
local MSG_UNDERFLOW = "Number underflow. Attempting to store a number with magnitude " ..
  "smaller than supported range"
local MSG_NOT_NUMBER = "The parameter cannot be converted to a numeric value"
M.MSG_DIGITS, M.MSG_OVERFLOW, M.MSG_UNDERFLOW, M.MSG_NOT_NUMBER =
  MSG_DIGITS, MSG_OVERFLOW, MSG_UNDERFLOW, MSG_NOT_NUMBER

local function raise(fn, fmt, ...)
  error(string_format("dynafile.%s: " .. fmt, fn, ...), 3)
end

-- ------------------------------------------------------------ decimals

-- A decimal value is a table with DEC_MT holding its number as sign,
-- digits and exp (what this file makes), or as `enc`, the order-preserving
-- encoding of the core's decimal.c (what the binding's decoder and
-- core.decimal_parse make, and a cache the binding's key code fills), or
-- both.  sign, digits and exp are read through __index from enc the first
-- time they are needed.
local DEC_MT = core.decimal_mt or {}
DEC_MT.__name = "dynafile.decimal"
local dec_methods = {}
local rawget, rawset = rawget, rawset
-- the binding's C constructors (nil for what they refuse: the Lua code
-- below then gives the message)
local decimal_parts, decimal_parse, number_parse =
  core.decimal_parts, core.decimal_parse, core.number_parse
DEC_MT.__index = function(d, k)
  if k == "sign" or k == "digits" or k == "exp" then
    local enc = rawget(d, "enc")
    if enc == nil then return nil end
    local sign, digits, e = decimal_parts(enc)
    rawset(d, "sign", sign)
    rawset(d, "digits", digits)
    rawset(d, "exp", e)
    return rawget(d, k)
  end
  return dec_methods[k]
end

-- Parse a DynamoDB N string into sign (-1, 0, 1), digits (no leading or
-- trailing zeros; "" for zero) and exponent (value = digits * 10^exp).
-- Returns nil, message when s is no number (DynamoDB's message) or outside
-- DynamoDB's range.  `unbounded`: skip the range and precision checks
-- (for the digits of a Lua float, which may lie beyond them).
local function parse(s, unbounded)
  if type(s) ~= "string" then return nil, MSG_NOT_NUMBER end
  local mant, ex = string_match(s, "^([^eE]*)[eE]([+-]?%d+)$")
  if not mant then
    mant, ex = s, "0"
  end
  local sgn, int, frac = string_match(mant, "^([+-]?)(%d*)%.?(%d*)$")
  if not sgn or (int == "" and frac == "") then
    if s == "" then return nil, MSG_NOT_NUMBER end
    return nil, MSG_NOT_NUMBER .. ": " .. s
  end
  local digits = int .. frac
  local lead = string_match(digits, "^0*")
  digits = string_sub(digits, #lead + 1)
  if digits == "" then return 0, "", 0 end
  local trail = string_match(digits, "0*$")
  digits = string_sub(digits, 1, #digits - #trail)
  -- a huge written exponent: clamp it (the value is out of range anyway)
  local e
  local exdigits = string_gsub(ex, "^[+-]?0*", "")
  if #exdigits > 9 then
    e = (string_sub(ex, 1, 1) == "-") and -1e9 or 1e9
  else
    e = tonumber(ex)
  end
  e = e - #frac + #trail
  if not unbounded then
    if #digits > MAX_DIGITS then return nil, MSG_DIGITS end
    local adjusted = e + #digits - 1
    if adjusted > MAX_EXP then return nil, MSG_OVERFLOW end
    if adjusted < MIN_EXP then return nil, MSG_UNDERFLOW end
  end
  if HAS_INTEGERS then e = math.tointeger(e) or e end
  return sgn == "-" and -1 or 1, digits, e
end

-- The canonical (plain) string of sign, digits, exp.
local function plain(sign, digits, e)
  if sign == 0 then return "0" end
  local s
  local n = #digits
  if e >= 0 then
    s = digits .. string_rep("0", e)
  elseif -e < n then
    s = string_sub(digits, 1, n + e) .. "." .. string_sub(digits, n + e + 1)
  else
    s = "0." .. string_rep("0", -e - n) .. digits
  end
  if sign < 0 then return "-" .. s end
  return s
end

-- The decimal string of the float f (finite): the integer it is in the
-- int64 range (%.0f prints it exactly), else the shortest decimal that
-- reads back as f.  decimal.c's df__dec_from_double is the same rule.
local function shortest(f)
  if f == math_floor(f) and f >= -INT64_END and f < INT64_END then
    return string_format("%.0f", f)
  end
  for p = 15, 17 do
    local s = string_format("%." .. p .. "g", f)
    if p == 17 or tonumber(s) == f then return s end
  end
end

local function new_decimal(sign, digits, e)
  return setmetatable({ sign = sign, digits = digits, exp = e }, DEC_MT)
end

local function is_int64(v)
  return ffi ~= nil and type(v) == "cdata" and
    (ffi.istype("int64_t", v) or ffi.istype("uint64_t", v))
end

-- sign, digits, exp of a number value (Lua number, decimal, int64 cdata),
-- or nil and why not.  Floats beyond DynamoDB's range are given as they
-- are (unbounded); NaN and the infinities are refused.
local function parts(v)
  local tv = type(v)
  if tv == "number" then
    if v ~= v then return nil, "NaN is not a number DynamoDB can hold" end
    if v == math_huge or v == -math_huge then
      return nil, "infinity is not a number DynamoDB can hold"
    end
    if (HAS_INTEGERS and math_type(v) == "integer") then
      return parse(string_format("%d", v), true)
    end
    return parse(shortest(v), true)
  elseif tv == "table" and getmetatable(v) == DEC_MT then
    return v.sign, v.digits, v.exp
  elseif is_int64(v) then
    return parse((string_gsub(tostring(v), "U?LL$", "")), true)
  end
  return nil, "not a number"
end

-- Compare two numbers given as parts: -1, 0 or 1.
local function cmp_parts(sa, da, ea, sb, db, eb)
  if sa ~= sb then return sa < sb and -1 or 1 end
  if sa == 0 then return 0 end
  local aa, ab = ea + #da, eb + #db -- position of the leading digit
  local mag
  if aa ~= ab then
    mag = aa < ab and -1 or 1
  elseif da == db then
    return 0
  else
    mag = da < db and -1 or 1 -- same magnitude: digit by digit
  end
  return sa * mag
end

local function cmp_numbers(a, b)
  local sa, da, ea = parts(a)
  if not sa then error("dynafile.decimal: cannot compare " .. tostring(a), 3) end
  local sb, db, eb = parts(b)
  if not sb then error("dynafile.decimal: cannot compare " .. tostring(b), 3) end
  return cmp_parts(sa, da, ea, sb, db, eb)
end

DEC_MT.__tostring = function(d) return plain(d.sign, d.digits, d.exp) end
DEC_MT.__eq = function(a, b)
  if getmetatable(a) ~= DEC_MT or getmetatable(b) ~= DEC_MT then return false end
  local ea, eb = rawget(a, "enc"), rawget(b, "enc")
  if ea and eb then return ea == eb end -- equal numbers, equal encodings
  return a.sign == b.sign and a.digits == b.digits and a.exp == b.exp
end
DEC_MT.__lt = function(a, b) return cmp_numbers(a, b) < 0 end
DEC_MT.__le = function(a, b) return cmp_numbers(a, b) <= 0 end
DEC_MT.__concat = function(a, b)
  if getmetatable(a) == DEC_MT then a = plain(a.sign, a.digits, a.exp) end
  if getmetatable(b) == DEC_MT then b = plain(b.sign, b.digits, b.exp) end
  return a .. b
end
DEC_MT.__unm = function(d) return new_decimal(-d.sign, d.digits, d.exp) end

--- The nearest Lua number (a float, or an integer when the value is one
-- that fits): may lose digits.
-- @param d the decimal value
-- @treturn number
-- @raise nothing
function dec_methods.tonumber(d)
  return tonumber(plain(d.sign, d.digits, d.exp))
end

--- DynamoDB's canonical string of the value (as `tostring(d)`).
-- @param d the decimal value
-- @treturn string plain digits, no exponent ("-0.001", "12500")
-- @raise nothing
function dec_methods.string(d)
  return plain(d.sign, d.digits, d.exp)
end

--- Make a decimal value: an exact DynamoDB number.
-- @param v a DynamoDB N string ("12.5e3", "-0.001", "1E-130"), a Lua
--   number (its shortest decimal), an int64 cdata, or a decimal value
--   (returned as is)
-- @return a decimal value: `tostring` gives DynamoDB's canonical digits;
--   `<`, `<=`, `==` compare decimals numerically (also with Lua numbers on
--   `<` and `<=` from Lua 5.3 on); `d:tonumber()` gives the nearest Lua number
-- @raise when v is no number, NaN, infinite, or beyond DynamoDB's range or
--   precision (38 digits, 1E-130 to 9.99..E+125; DynamoDB's message)
function M.decimal(v)
  if type(v) == "table" and getmetatable(v) == DEC_MT then return v end
  local s, d, e
  if type(v) == "string" then
    local dec = decimal_parse and decimal_parse(v) -- in C; nil for what parse refuses
    if dec then return dec end
    s, d, e = parse(v)
    if not s then raise("decimal", "%s", d) end
  else
    s, d, e = parts(v)
    if not s then raise("decimal", "v: %s", d or ("a " .. type(v) .. " is not a number")) end
    if type(v) == "number" and s ~= 0 then
      if #d > MAX_DIGITS then raise("decimal", "%s", MSG_DIGITS) end
      local adjusted = e + #d - 1
      if adjusted > MAX_EXP then raise("decimal", "%s", MSG_OVERFLOW) end
      if adjusted < MIN_EXP then raise("decimal", "%s", MSG_UNDERFLOW) end
    end
  end
  return new_decimal(s, d, e)
end

--- Is v a decimal value?
-- @param v any value
-- @treturn boolean
-- @raise nothing
function M.is_decimal(v)
  return type(v) == "table" and getmetatable(v) == DEC_MT
end

-- ----------------------------------------- numbers: Lua form and string

-- int64_t cdata of an integer given by its decimal string (within int64).
local function int64_of(str)
  local neg = string_sub(str, 1, 1) == "-"
  local x = ffi.new("int64_t", 0)
  for i = neg and 2 or 1, #str do
    local d = string_byte(str, i) - 48
    if neg then x = x * 10 - d else x = x * 10 + d end
  end
  return x
end

local INT64_MAX_STR = "9223372036854775807"
local INT64_MIN_ABS = "9223372036854775808"

-- Is the integer given by its digits within int64?
local function fits_int64(sign, plain_abs)
  if #plain_abs ~= 19 then return #plain_abs < 19 end
  return plain_abs <= (sign < 0 and INT64_MIN_ABS or INT64_MAX_STR)
end

-- The Lua value of a number given by its parts.
local function to_lua(sign, digits, e)
  if sign == 0 then return 0 end
  local s = plain(sign, digits, e)
  if e >= 0 and #digits + e <= 19 then
    local abs = sign < 0 and string_sub(s, 2) or s
    if fits_int64(sign, abs) then
      if HAS_INTEGERS then
        local i = math.tointeger(tonumber(s))
        if i and string_format("%d", i) == s then return i end
      elseif #abs < 16 or (#abs == 16 and abs <= "9007199254740992") then
        return tonumber(s) -- a double holds it exactly
      elseif ffi then
        return int64_of(s)
      end
    end
  end
  local f = tonumber(s)
  if f and f == f and f ~= math_huge and f ~= -math_huge then
    if HAS_INTEGERS and math_type(f) == "integer" then f = f + 0.0 end
    local fs, fd, fe = parse(shortest(f), true)
    if fs == sign and fd == digits and fe == e then return f end
  end
  return new_decimal(sign, digits, e)
end

--- The Lua value of a DynamoDB N string: a Lua number when it holds the
-- value exactly (an integer when the value is an integer that fits, from
-- Lua 5.3 on), under LuaJIT an `int64_t` cdata for an integer beyond 2^53
-- that fits in 64 bits, else a decimal value.
-- @tparam string s the N string ("42", "-1.5e3", "0.1")
-- @return the number
-- @raise when s is no number or outside DynamoDB's range (DynamoDB's
--   message)
function M.number(s)
  if type(s) ~= "string" then
    raise("number", "s must be a string, got %s", type(s))
  end
  local v = number_parse and number_parse(s) -- in C; nil for what parse refuses
  if v ~= nil then return v end
  local sign, digits, e = parse(s)
  if not sign then raise("number", "%s", digits) end
  return to_lua(sign, digits, e)
end

-- M.number in Lua alone: the binding's decoder calls it for the numbers it
-- leaves to Lua (integers beyond 2^53 on 5.1 and LuaJIT).
local function lua_number(s)
  local sign, digits, e = parse(s)
  if not sign then raise("number", "%s", digits) end
  return to_lua(sign, digits, e)
end

--- Parse an N string without raising.
-- @param s the N string
-- @return the Lua value as `number` gives it, or nil and DynamoDB's message
-- @raise nothing
function M.parse_number(s)
  local v = number_parse and number_parse(s)
  if v ~= nil then return v end
  local sign, digits, e = parse(s)
  if not sign then return nil, digits end
  return to_lua(sign, digits, e)
end

--- DynamoDB's canonical N string of a number value: plain digits, no
-- exponent, no leading or trailing zeros ("1.5", "100", "-0.001", "0").
-- A float gives its value: the integer it is in the int64 range ("1152921504606846976"
-- for 2^60), else its shortest decimal ("0.1" for 0.1).  Floats beyond
-- DynamoDB's range give their digits all the same; check with
-- `number_in_range`.
-- @param v a Lua number, a decimal value or an int64 cdata
-- @treturn string
-- @raise for NaN, the infinities and values that are no number
function M.number_string(v)
  local s, d, e = parts(v)
  if not s then raise("number_string", "v: %s", d) end
  return plain(s, d, e)
end

--- Does the number v fit DynamoDB's range and precision?
-- @param v a Lua number, decimal value or int64 cdata
-- @return true, or false and DynamoDB's message (also for NaN, the
--   infinities and what is no number)
-- @raise nothing
function M.number_in_range(v)
  local s, d, e = parts(v)
  if not s then return false, d end
  if s == 0 then return true end
  if #d > MAX_DIGITS then return false, MSG_DIGITS end
  local adjusted = e + #d - 1
  if adjusted > MAX_EXP then return false, MSG_OVERFLOW end
  if adjusted < MIN_EXP then return false, MSG_UNDERFLOW end
  return true
end

--- Compare two number values numerically, as decimals.
-- @param a a Lua number, decimal value or int64 cdata
-- @param b the same
-- @treturn number -1, 0 or 1
-- @raise when either is not a number value (or NaN)
function M.compare_numbers(a, b)
  local sa, da, ea = parts(a)
  if not sa then raise("compare_numbers", "a: %s", da) end
  local sb, db, eb = parts(b)
  if not sb then raise("compare_numbers", "b: %s", db) end
  return cmp_parts(sa, da, ea, sb, db, eb)
end

-- -------------------------------------------------------------- binary

local BIN_MT = core.binary_mt or {}
BIN_MT.__name = "dynafile.binary"
local bin_methods = {}
BIN_MT.__index = bin_methods

local make_binary = core.binary -- a userdata made in C, when available
local bytes_of
if make_binary then
  bytes_of = core.binary_bytes
else
  make_binary = function(s) return setmetatable({ s }, BIN_MT) end
  bytes_of = function(b) return b[1] end
  BIN_MT.__len = function(b) return #b[1] end
  BIN_MT.__eq = function(a, b)
    return getmetatable(a) == BIN_MT and getmetatable(b) == BIN_MT and a[1] == b[1]
  end
  BIN_MT.__lt = function(a, b) return a[1] < b[1] end
  BIN_MT.__le = function(a, b) return a[1] <= b[1] end
  BIN_MT.__tostring = function(b)
    return string_format("dynafile.binary(%d bytes)", #b[1])
  end
end

--- The bytes of a binary value, as a Lua string.
-- @param b the binary value
-- @treturn string
-- @raise nothing
function bin_methods.bytes(b) return bytes_of(b) end
--- The number of bytes (as `#b`).
-- @param b the binary value
-- @treturn integer
-- @raise nothing
function bin_methods.len(b) return #bytes_of(b) end

--- Make a binary value (DynamoDB's B): bytes that are stored, compared
-- and exported as binary, not as a string.
-- @tparam string s the bytes
-- @return a binary value: `b:bytes()`, `b:len()`, `#b`; `==`, `<`, `<=`
--   compare bytes
-- @raise when s is not a string
function M.binary(s)
  if type(s) ~= "string" then
    if M.is_binary(s) then return s end
    raise("binary", "s must be a string, got %s", type(s))
  end
  return make_binary(s)
end

--- Is v a binary value?
-- @param v any value
-- @treturn boolean
-- @raise nothing
function M.is_binary(v)
  return getmetatable(v) == BIN_MT and (type(v) == "table" or type(v) == "userdata")
end

--- The bytes of a binary value.
-- @param v any value
-- @treturn string|nil the bytes, nil when v is not a binary value
-- @raise nothing
function M.binary_bytes(v)
  if M.is_binary(v) then return bytes_of(v) end
  return nil
end

-- ---------------------------------------------------------------- sets

local SET_MT = {
  S = core.set_s_mt or {},
  N = core.set_n_mt or {},
  B = core.set_b_mt or {},
}
local SET_KIND = {}  -- metatable -> "SS" | "NS" | "BS"
local set_methods = {}

-- The key under which an element is unique in a set of `kind`, or nil
-- and a message when the element does not belong there.
local function element_key(kind, v)
  if kind == "S" then
    if type(v) == "string" then return v end
    return nil, "a string set holds strings, not " .. (M.type(v) or type(v))
  elseif kind == "N" then
    local s, d, e = parts(v)
    if s then return plain(s, d, e) end
    return nil, "a number set holds numbers, not " .. (M.type(v) or type(v))
  else
    if M.is_binary(v) then return bytes_of(v) end
    if type(v) == "string" then return v end
    return nil, "a binary set holds binary values, not " .. (M.type(v) or type(v))
  end
end

local function element_value(kind, v)
  if kind == "B" and type(v) == "string" then return make_binary(v) end
  return v
end

for kind, mt in pairs(SET_MT) do
  mt.__name = "dynafile.set"
  mt.__index = set_methods
  mt.kind = kind
  mt.__eq = function(a, b)
    if getmetatable(a) ~= getmetatable(b) or #a ~= #b then return false end
    for i = 1, #b do
      if not set_methods.contains(a, b[i]) then return false end
    end
    return true
  end
  mt.__tostring = function(s)
    local parts_ = {}
    for i = 1, #s do
      local v = s[i]
      if kind == "B" then
        parts_[i] = tostring(v)
      elseif kind == "N" then
        parts_[i] = M.number_string(v)
      else
        parts_[i] = string_format("%q", v)
      end
    end
    return "dynafile.set{" .. table_concat(parts_, ", ") .. "} (" .. kind .. "S)"
  end
  SET_KIND[mt] = kind .. "S"
end

--- Does the set hold v?  Numbers compare numerically (1 and 1.0 are the
-- same element), binary values by their bytes (a string set holds no
-- binary value, a binary set takes a string for its bytes).
-- @param s the set
-- @param v the value looked for
-- @treturn boolean
-- @raise nothing
function set_methods.contains(s, v)
  local kind = getmetatable(s).kind
  local key = element_key(kind, v)
  if key == nil then return false end
  for i = 1, #s do
    if element_key(kind, s[i]) == key then return true end
  end
  return false
end

--- Add v to the set unless it holds it already.
-- @param s the set
-- @param v the element (a string for a binary set becomes a binary value)
-- @return s
-- @raise when v does not belong in the set (a number in a string set...)
function set_methods.add(s, v)
  local kind = getmetatable(s).kind
  local key, why = element_key(kind, v)
  if key == nil then raise("set.add", "v: %s", why) end
  for i = 1, #s do
    if element_key(kind, s[i]) == key then return s end
  end
  s[#s + 1] = element_value(kind, v)
  return s
end

--- Remove v from the set, if it holds it (the order of the others stays).
-- @param s the set
-- @param v the element
-- @return s
-- @raise nothing
function set_methods.delete(s, v)
  local kind = getmetatable(s).kind
  local key = element_key(kind, v)
  if key == nil then return s end
  local n = #s
  for i = 1, n do
    if element_key(kind, s[i]) == key then
      for j = i, n - 1 do s[j] = s[j + 1] end
      s[n] = nil
      return s
    end
  end
  return s
end

local KINDS = { S = "S", N = "N", B = "B", SS = "S", NS = "N", BS = "B" }

--- Make a set value (DynamoDB's SS, NS or BS).
-- @tparam table list the elements (read with ipairs); duplicates are
--   dropped (numbers compare numerically), the first kept
-- @tparam[opt] string kind "S", "N" or "B" ("SS", "NS", "BS" also do);
--   needed only when list is empty, else taken from the first element.
--   Strings given for a binary set become binary values.
-- @return the set: elements at 1..n (ipairs and # work), `s:contains(v)`,
--   `s:add(v)`, `s:delete(v)`, `==` compares as sets.  An empty set can
--   be made but not stored (DynamoDB has no empty sets).
-- @raise when an element does not fit the kind, or kind is unknown
function M.set(list, kind)
  if type(list) ~= "table" then
    raise("set", "list must be a table, got %s", type(list))
  end
  if kind ~= nil then
    if KINDS[kind] == nil then
      raise("set", "kind must be \"S\", \"N\" or \"B\", got %s", tostring(kind))
    end
    kind = KINDS[kind]
  else
    local first = list[1]
    if first == nil then
      raise("set", "kind is needed for an empty set (\"S\", \"N\" or \"B\")")
    end
    if type(first) == "string" then
      kind = "S"
    elseif M.is_binary(first) then
      kind = "B"
    elseif parts(first) then
      kind = "N"
    else
      raise("set", "list[1]: a set holds strings, numbers or binary values, not %s",
        M.type(first) or type(first))
    end
  end
  local out, seen = {}, {}
  for i, v in ipairs(list) do
    local key, why = element_key(kind, v)
    if key == nil then raise("set", "list[%d]: %s", i, why) end
    if not seen[key] then
      seen[key] = true
      out[#out + 1] = element_value(kind, v)
    end
  end
  return setmetatable(out, SET_MT[kind])
end

--- Is v a set value?
-- @param v any value
-- @treturn boolean
-- @raise nothing
function M.is_set(v)
  return type(v) == "table" and SET_KIND[getmetatable(v)] ~= nil
end

-- ---------------------------------------------------------------- type

--- The DynamoDB type of a value: "S", "N", "B", "BOOL", "NULL", "M", "L",
-- "SS", "NS" or "BS"; nil for a value no item can hold (nil, NaN,
-- functions, ...).  A table is "L" when marked with `dynafile.array` or
-- when its keys are exactly 1..n (n > 0), else "M".
-- @param v any value
-- @treturn string|nil
-- @raise nothing
function M.type(v)
  local tv = type(v)
  if tv == "string" then return "S" end
  if tv == "number" then
    if v ~= v then return nil end
    return "N"
  end
  if tv == "boolean" then return "BOOL" end
  if rawequal(v, NULL) then return "NULL" end
  if tv == "table" then
    local mt = getmetatable(v)
    if mt == DEC_MT then return "N" end
    if mt == BIN_MT then return "B" end
    local sk = SET_KIND[mt]
    if sk then return sk end
    if mt == ARRAY_MT then return "L" end
    local n = #v
    if n == 0 then return "M" end
    local count = 0
    for _ in pairs(v) do count = count + 1 end
    return count == n and "L" or "M"
  end
  if tv == "userdata" and getmetatable(v) == BIN_MT then return "B" end
  if is_int64(v) then return "N" end
  return nil
end

-- The binding stores these values with their DynamoDB types (decimals as
-- MessagePack ext 1, binary values as bin, sets as ext 2-4) and reads
-- them back through these constructors.
if core.register_types then
  core.register_types({
    [DEC_MT] = "N", [BIN_MT] = "B",
    [SET_MT.S] = "SS", [SET_MT.N] = "NS", [SET_MT.B] = "BS",
  }, {
    number = lua_number,
    binary = make_binary,
    set = M.set,
  })
end

M.decimal_mt = DEC_MT
M.binary_mt = BIN_MT
M.set_mt = SET_MT
M.array_mt = ARRAY_MT
M.null = NULL

return M
