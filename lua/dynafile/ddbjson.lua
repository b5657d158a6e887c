--- dynafile.ddbjson: Lua values <-> DynamoDB AttributeValues, without loss.
--
-- An AttributeValue is a table with exactly one type key, as DynamoDB's
-- JSON has it once decoded: `{S = "x"}`, `{N = "12.5"}`, `{B = base64}`,
-- `{BOOL = true}`, `{NULL = true}`, `{M = {name = av, ...}}`, `{L = {av,
-- ...}}`, `{SS = {"a", ...}}`, `{NS = {"1", ...}}`, `{BS = {base64, ...}}`.
-- The Lua side is the one of `dynafile.types`: N becomes a Lua number when
-- that is exact and a decimal value otherwise, B a binary value, sets set
-- values, so `decode_value(encode_value(v))` gives v back and
-- `encode_value(decode_value(av))` gives av back with DynamoDB's canonical
-- number strings (as DynamoDB itself returns them: "1.50" comes back "1.5").
--
-- Bad input raises an error object, a table `{code = "ValidationException"
-- | "SerializationException", message = "..."}` whose `__tostring` gives
-- "code: message"; the messages are DynamoDB's own ("One or more parameter
-- values were invalid: An string set  may not be empty", "Number overflow.
-- Attempting to store a number with magnitude larger than supported range").
-- Lists (L and the element lists of sets) made by `encode_value` carry
-- `dynafile.array`'s metatable, so a JSON writer can tell an empty L from
-- an empty M.
-- @module dynafile.ddbjson

local types = require "dynafile.types"

local type, pairs, next, error = type, pairs, next, error
local setmetatable, getmetatable = setmetatable, getmetatable
local string_byte, string_char, string_sub, string_format =
  string.byte, string.char, string.sub, string.format
local table_concat, table_sort = table.concat, table.sort
local math_floor = math.floor

local NULL = types.null
local ARRAY_MT = types.array_mt
local types_type, number_string, number_in_range, parse_number =
  types.type, types.number_string, types.number_in_range, types.parse_number

local M = {}

-- Deepest nesting of a value: DynamoDB accepts an attribute nested 31
-- levels below itself (32 counting the attribute), as dynafile does.
M.MAX_VALUE_DEPTH = 31

-- ------------------------------------------------------------- errors

local Error = {}
Error.__index = Error
Error.__tostring = function(e) return e.code .. ": " .. e.message end

--- Is e an error raised by this module?
-- @param e a value caught by pcall
-- @treturn boolean
-- @raise nothing
function M.is_error(e)
  return getmetatable(e) == Error
end

local function fail(message, code)
  error(setmetatable({ code = code or "ValidationException", message = message }, Error), 0)
end

local INVALID = "One or more parameter values were invalid: "
local MSG_EMPTY = "Supplied AttributeValue is empty, must contain exactly one of the " ..
  "supported datatypes"
local MSG_MANY = "Supplied AttributeValue has more than one datatypes set, must contain " ..
  "exactly one of the supported datatypes"
local MSG_DEPTH = "Nesting Levels have exceeded supported limits: Attributes in the item " ..
  "have nested levels beyond supported limit"

-- ------------------------------------------------------------- base64

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local B64_CHAR, B64_INDEX = {}, {}
for i = 1, 64 do
  B64_CHAR[i - 1] = string_sub(B64, i, i)
  B64_INDEX[string_byte(B64, i)] = i - 1
end

--- Standard base64 (with padding) of a string.
-- @tparam string s the bytes
-- @treturn string
-- @raise nothing
function M.base64_encode(s)
  local out, n = {}, #s
  for i = 1, n, 3 do
    local a, b, c = string_byte(s, i, i + 2)
    local v = a * 65536 + (b or 0) * 256 + (c or 0)
    out[#out + 1] = B64_CHAR[math_floor(v / 262144) % 64] ..
      B64_CHAR[math_floor(v / 4096) % 64] ..
      (b and B64_CHAR[math_floor(v / 64) % 64] or "=") ..
      (c and B64_CHAR[v % 64] or "=")
  end
  return table_concat(out)
end

--- Decode standard base64 (padding required, no whitespace).
-- @tparam string s the base64 text
-- @return the bytes, or nil and why not (DynamoDB's wording)
-- @raise nothing
function M.base64_decode(s)
  if type(s) ~= "string" then return nil, "not a string" end
  local n = #s
  if n % 4 ~= 0 then
    return nil, "Base64 encoded length is expected a multiple of 4 bytes but found: " .. n
  end
  local out = {}
  for i = 1, n, 4 do
    local q1, q2, q3, q4 = string_byte(s, i, i + 3)
    local d1, d2, d3, d4 = B64_INDEX[q1], B64_INDEX[q2], B64_INDEX[q3], B64_INDEX[q4]
    local last = i + 3 == n
    if not d1 or not d2 or (not d3 and not (last and q3 == 61 and q4 == 61)) or
        (not d4 and not (last and q4 == 61)) then
      return nil, "Invalid Base64 character"
    end
    local v = d1 * 262144 + d2 * 4096 + (d3 or 0) * 64 + (d4 or 0)
    local a, b, c = math_floor(v / 65536) % 256, math_floor(v / 256) % 256, v % 256
    if d4 then
      out[#out + 1] = string_char(a, b, c)
    elseif d3 then
      if c ~= 0 then return nil, "Invalid Base64 character" end
      out[#out + 1] = string_char(a, b)
    else
      if b ~= 0 then return nil, "Invalid Base64 character" end
      out[#out + 1] = string_char(a)
    end
  end
  return table_concat(out)
end

-- ----------------------------------------------------------- decoding

local decode

local function decode_b(v)
  if type(v) ~= "string" then
    fail("Binary value must be a base64 encoded string", "SerializationException")
  end
  local bytes, why = M.base64_decode(v)
  if not bytes then fail(why, "SerializationException") end
  return bytes
end

local function decode_n(v)
  if type(v) ~= "string" then
    fail("NUMBER_VALUE cannot be converted to String", "SerializationException")
  end
  local x, why = parse_number(v)
  if x == nil then fail(why) end
  return x
end

local function list_of(v, kind)
  if type(v) ~= "table" or (next(v) ~= nil and v[1] == nil) then
    fail("Start of structure or map found where not expected", "SerializationException")
  end
  local n = #v
  for k in pairs(v) do
    if type(k) ~= "number" or k < 1 or k > n or k ~= math_floor(k) then
      fail(kind .. " must be a list", "SerializationException")
    end
  end
  return n
end

local function shown(list)
  return "[" .. table_concat(list, ", ") .. "]"
end

local DECODERS = {
  S = function(v)
    if type(v) ~= "string" then
      fail("STRING_VALUE can not be converted to a String", "SerializationException")
    end
    return v
  end,
  N = decode_n,
  B = function(v) return types.binary(decode_b(v)) end,
  BOOL = function(v)
    if type(v) ~= "boolean" then
      fail("BOOL must be true or false", "SerializationException")
    end
    return v
  end,
  NULL = function(v)
    if v ~= true then fail(INVALID .. "Null attribute value types must have the value of true") end
    return NULL
  end,
  SS = function(v)
    local n = list_of(v, "SS")
    if n == 0 then fail(INVALID .. "An string set  may not be empty") end
    local seen = {}
    for i = 1, n do
      local s = v[i]
      if type(s) ~= "string" then
        fail("STRING_VALUE can not be converted to a String", "SerializationException")
      end
      if seen[s] then
        fail(INVALID .. "Input collection " .. shown(v) .. " contains duplicates.")
      end
      seen[s] = true
    end
    return types.set(v, "S")
  end,
  NS = function(v)
    local n = list_of(v, "NS")
    if n == 0 then fail(INVALID .. "An number set  may not be empty") end
    local out, seen = {}, {}
    for i = 1, n do
      local x = decode_n(v[i])
      local key = number_string(x)
      if seen[key] then fail("Input collection contains duplicates") end
      seen[key] = true
      out[i] = x
    end
    return types.set(out, "N")
  end,
  BS = function(v)
    local n = list_of(v, "BS")
    if n == 0 then fail(INVALID .. "Binary sets should not be empty") end
    local out, seen = {}, {}
    for i = 1, n do
      local bytes = decode_b(v[i])
      if seen[bytes] then
        fail(INVALID .. "Input collection " .. shown(v) .. "of type BS contains duplicates.")
      end
      seen[bytes] = true
      out[i] = types.binary(bytes)
    end
    return types.set(out, "B")
  end,
}

DECODERS.L = function(v, depth)
  local n = list_of(v, "L")
  if depth >= M.MAX_VALUE_DEPTH then fail(MSG_DEPTH) end
  local out = {}
  for i = 1, n do out[i] = decode(v[i], depth + 1) end
  if n == 0 then setmetatable(out, ARRAY_MT) end
  return out
end

DECODERS.M = function(v, depth)
  if type(v) ~= "table" or (v[1] ~= nil and next(v) == 1) then
    fail("Start of list found where not expected", "SerializationException")
  end
  if depth >= M.MAX_VALUE_DEPTH then fail(MSG_DEPTH) end
  local out = {}
  for k, x in pairs(v) do
    if type(k) ~= "string" then
      fail("Start of list found where not expected", "SerializationException")
    end
    out[k] = decode(x, depth + 1)
  end
  return out
end

decode = function(av, depth)
  if type(av) ~= "table" then fail(MSG_EMPTY) end
  local kind, v = next(av)
  if kind == nil then fail(MSG_EMPTY) end
  if next(av, kind) ~= nil then
    -- a JSON null member (cjson.null, or nil) counts as not set
    local count = 0
    for _, x in pairs(av) do
      if type(x) ~= "userdata" or x == NULL then count = count + 1 end
    end
    if count > 1 then fail(MSG_MANY) end
    for k, x in pairs(av) do
      if type(x) ~= "userdata" or x == NULL then kind, v = k, x end
    end
  end
  local f = DECODERS[kind]
  if not f then fail(MSG_EMPTY) end
  return f(v, depth)
end

--- The Lua value of an AttributeValue.
-- @tparam table av e.g. `{N = "12.5"}`, `{M = {a = {S = "x"}}}`
-- @return the Lua value (see `dynafile.types`)
-- @raise an error object (see the module's description) for a malformed
--   AttributeValue
function M.decode_value(av)
  return decode(av, 0)
end

--- The Lua item of an AttributeValue map.
-- @tparam table t `{name = av, ...}`
-- @treturn table the item
-- @raise an error object for a malformed map or value
function M.decode_item(t)
  if type(t) ~= "table" then
    fail("Start of list found where not expected", "SerializationException")
  end
  local item = {}
  for k, av in pairs(t) do
    if type(k) ~= "string" then
      fail("Start of list found where not expected", "SerializationException")
    end
    item[k] = decode(av, 0)
  end
  return item
end

-- ----------------------------------------------------------- encoding

local encode

local function list(t)
  return setmetatable(t, ARRAY_MT)
end

local function n_string(v)
  local ok, why = number_in_range(v)
  if not ok then
    if v ~= v then fail("NaN is not a number DynamoDB can hold") end
    fail(why)
  end
  return number_string(v)
end

local ENCODERS = {
  S = function(v) return { S = v } end,
  N = function(v) return { N = n_string(v) } end,
  B = function(v) return { B = M.base64_encode(types.binary_bytes(v)) } end,
  BOOL = function(v) return { BOOL = v } end,
  NULL = function() return { NULL = true } end,
  SS = function(v)
    if #v == 0 then fail(INVALID .. "An string set  may not be empty") end
    local out = {}
    for i = 1, #v do out[i] = v[i] end
    table_sort(out)
    return { SS = list(out) }
  end,
  NS = function(v)
    if #v == 0 then fail(INVALID .. "An number set  may not be empty") end
    local nums = {}
    for i = 1, #v do nums[i] = v[i] end
    table_sort(nums, function(a, b) return types.compare_numbers(a, b) < 0 end)
    local out = {}
    for i = 1, #nums do out[i] = n_string(nums[i]) end
    return { NS = list(out) }
  end,
  BS = function(v)
    if #v == 0 then fail(INVALID .. "Binary sets should not be empty") end
    local bytes = {}
    for i = 1, #v do bytes[i] = types.binary_bytes(v[i]) end
    table_sort(bytes)
    local out = {}
    for i = 1, #bytes do out[i] = M.base64_encode(bytes[i]) end
    return { BS = list(out) }
  end,
}

ENCODERS.L = function(v, depth)
  if depth >= M.MAX_VALUE_DEPTH then fail(MSG_DEPTH) end
  local out = {}
  for i = 1, #v do out[i] = encode(v[i], depth + 1) end
  return { L = list(out) }
end

ENCODERS.M = function(v, depth)
  if depth >= M.MAX_VALUE_DEPTH then fail(MSG_DEPTH) end
  local out = {}
  for k, x in pairs(v) do
    if type(k) ~= "string" then
      fail(string_format("map keys must be strings, got %s", type(k)))
    end
    out[k] = encode(x, depth + 1)
  end
  return { M = out }
end

encode = function(v, depth)
  local t = types_type(v)
  if t == nil then
    if v ~= v then fail("NaN is not a number DynamoDB can hold") end
    fail("cannot encode a " .. type(v) .. " as an AttributeValue")
  end
  return ENCODERS[t](v, depth)
end

--- The AttributeValue of a Lua value.
-- @param v a string, number, decimal value, binary value, boolean,
--   `dynafile.null`, set value, or a table (a list or a map of these)
-- @treturn table the AttributeValue; sets are written sorted (strings and
--   binaries bytewise, numbers numerically), numbers as DynamoDB's canonical
--   strings
-- @raise an error object for a value DynamoDB cannot hold: NaN, infinity
--   or a float beyond DynamoDB's range, an empty set, a function, nesting
--   deeper than DynamoDB allows
function M.encode_value(v)
  return encode(v, 0)
end

--- The AttributeValue map of a Lua item.
-- @tparam table item the item
-- @treturn table `{name = av, ...}`
-- @raise an error object as `encode_value`, or when item is not a table
function M.encode_item(item)
  if type(item) ~= "table" or getmetatable(item) ~= nil and types_type(item) ~= "M" then
    fail("an item must be a table of attributes")
  end
  local out = {}
  for k, v in pairs(item) do
    if type(k) ~= "string" then
      fail(string_format("attribute names must be strings, got %s", type(k)))
    end
    out[k] = encode(v, 0)
  end
  return out
end

return M
