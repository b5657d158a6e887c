--- dynafile.remote.values: Lua values <-> DynamoDB AttributeValues.
--
-- The representation is the project's one (see the README's data model):
-- strings are S, numbers N, booleans BOOL, `dynafile.null` NULL, tables
-- whose keys are 1..n (or marked with `dynafile.array`) L, other tables
-- M.  When the `dynafile.ddbjson` module is present (sets, binary and
-- exact decimals), it does the conversion; this file then only adds the
-- messages that name the calling function.
--
-- Invariant: encode(decode(av)) == av for every AttributeValue this
-- module accepts, and a number is written with enough digits to come back
-- as the same Lua number.
-- @module dynafile.remote.values

local core = require "dynafile.core"

local type, pairs, next, tostring, tonumber, error, getmetatable, setmetatable =
  type, pairs, next, tostring, tonumber, error, getmetatable, setmetatable
local string_format = string.format
local math_type = math.type -- nil before Lua 5.3
local math_huge, math_floor = math.huge, math.floor
local math_tointeger = math.tointeger

local null, array_mt = core.null, core.array_mt

local M = {}

--- What an empty list is encoded as: Debian's lua-cjson writes every
-- empty table as `{}`, so an empty L carries this string, which the
-- client turns into `[]` in the JSON text (`"L":"\u0000...\u0000"` can
-- come from nothing else: a string the user stores is always inside
-- `{"S": ...}`).
M.EMPTY_LIST = "\0dynafile:empty-list\0"

local ok_ddb, ddbjson = pcall(require, "dynafile.ddbjson")
if not ok_ddb then ddbjson = nil end

-- The shortest decimal string that reads back as the same double.
local function number_string(v)
  if math_type and math_type(v) == "integer" then return string_format("%d", v) end
  if v ~= v or v == math_huge or v == -math_huge then return nil end
  if v == math_floor(v) and v > -2 ^ 53 and v < 2 ^ 53 then
    return string_format("%.0f", v)
  end
  for p = 15, 17 do
    local s = string_format("%." .. p .. "g", v)
    if tonumber(s) == v then return s end
  end
  return string_format("%.17g", v)
end
M.number_string = number_string

-- A DynamoDB N string as a Lua number: an integer when it is one that
-- fits (Lua 5.3+), otherwise the nearest double.
local function number_value(s)
  local n = tonumber(s)
  if math_tointeger and not s:find("[%.eE]") then
    local i = math_tointeger(n)
    if i and #s < 19 then return i end
    local big = s:match("^%-?%d+$") and math_tointeger(tonumber(s .. ""))
    if big then return big end
  end
  return n
end
M.number_value = number_value

local function is_list(t)
  if getmetatable(t) == array_mt then return true end
  local n = #t
  if n == 0 then return false end
  local count = 0
  for _ in pairs(t) do
    count = count + 1
    if count > n then return false end
  end
  return count == n
end

M.is_list = is_list

--- The number of elements of a list or map.
function M.size_of(t)
  if is_list(t) then return #t end
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

local encode_value
local function fail(fn, path, msg)
  error(string_format("dynafile.%s: %s: %s", fn, path, msg), 0)
end

-- [raises]
encode_value = function(v, fn, path, depth)
  local tv = type(v)
  if tv == "string" then return { S = v } end
  if tv == "number" then
    local s = number_string(v)
    if not s then fail(fn, path, "DynamoDB numbers cannot be NaN or infinite") end
    return { N = s }
  end
  if tv == "boolean" then return { BOOL = v } end
  if v == null then return { NULL = true } end
  if tv == "table" then
    if depth > 32 then fail(fn, path, "nesting deeper than 32 levels") end
    if is_list(v) then
      local l = {}
      for i = 1, #v do l[i] = encode_value(v[i], fn, path .. "[" .. (i - 1) .. "]", depth + 1) end
      if #l == 0 then return { L = M.EMPTY_LIST } end
      return { L = l }
    end
    local m = {}
    for k, x in pairs(v) do
      if type(k) ~= "string" then
        fail(fn, path, string_format("map keys must be strings, not %s", type(k)))
      end
      m[k] = encode_value(x, fn, path .. "." .. k, depth + 1)
    end
    return { M = m }
  end
  fail(fn, path, string_format("a %s cannot be stored", tv))
end

local decode_value
decode_value = function(av)
  local s = av.S
  if s then return s end
  local n = av.N
  if n then return number_value(n) end
  local b = av.BOOL
  if b ~= nil then return b end
  if av.NULL then return null end
  local m = av.M
  if m then
    local t = {}
    for k, x in pairs(m) do t[k] = decode_value(x) end
    return t
  end
  local l = av.L
  if l then
    local t = {}
    for i = 1, #l do t[i] = decode_value(l[i]) end
    if #l == 0 then setmetatable(t, array_mt) end
    return t
  end
  local k = next(av)
  error(string_format("dynafile: an attribute of type %s cannot be read by this build "
    .. "(sets and binary need the dynafile.ddbjson module)", tostring(k)), 0)
end

--- The AttributeValue of a Lua value.
-- @param v the value
-- @tparam string fn the calling function, for messages
-- @tparam string path the attribute path, for messages
-- @treturn table the AttributeValue
-- @raise on a value DynamoDB cannot hold
function M.encode_value(v, fn, path)
  if ddbjson then
    local ok, r = pcall(ddbjson.encode_value, v)
    if not ok then fail(fn, path, tostring(r)) end
    return r
  end
  return encode_value(v, fn, path, 1)
end

--- The Lua value of an AttributeValue.
function M.decode_value(av)
  if ddbjson then return ddbjson.decode_value(av) end
  return decode_value(av)
end

--- An item as a map of AttributeValues.
-- @raise on a value DynamoDB cannot hold, naming the attribute
function M.encode_item(item, fn)
  local out = {}
  for k, v in pairs(item) do
    if type(k) ~= "string" then
      error(string_format("dynafile.%s: attribute names must be strings, not %s", fn, type(k)), 0)
    end
    out[k] = M.encode_value(v, fn, k)
  end
  return out
end

--- A Lua item from a map of AttributeValues.
function M.decode_item(t)
  local out = {}
  local dv = ddbjson and ddbjson.decode_value or decode_value
  for k, av in pairs(t) do out[k] = dv(av) end
  return out
end

return M
