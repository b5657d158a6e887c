--- dynafile.remote.values: Lua values <-> DynamoDB AttributeValues for
-- the DynamoDB backend.
--
-- The conversion itself is `dynafile.ddbjson`'s (every DynamoDB type,
-- exact numbers, sets, binary).  This layer names the calling function and
-- the attribute in errors, and marks empty lists so that the JSON text
-- says `[]`: Debian's lua-cjson writes every empty table as `{}`, so an
-- empty L carries EMPTY_LIST, which the client turns into `[]`
-- (`"L":"\u0000...\u0000"` can come from nothing else: a string the user
-- stores is always inside `{"S": ...}`).
--
-- Invariant: encode then decode gives the value back, type for type and
-- digit for digit.
-- @module dynafile.remote.values

local ddbjson = require "dynafile.ddbjson"
local types = require "dynafile.types"

local type, pairs, pcall, tostring, error =
  type, pairs, pcall, tostring, error
local string_format = string.format

local M = {}

M.EMPTY_LIST = "\0dynafile:empty-list\0"
local EMPTY_LIST = M.EMPTY_LIST
local ddb_encode, ddb_decode = ddbjson.encode_value, ddbjson.decode_value
local types_type = types.type

--- DynamoDB's canonical number string of a number value.
M.number_string = types.number_string

--- Whether a value is a list (L).
-- @param v any value
-- @treturn boolean
-- @raise never
function M.is_list(v)
  return types_type(v) == "L"
end

--- Whether a value is a map (M) or a list (L): a document to compare
-- element by element.
-- @param v any value
-- @treturn boolean
-- @raise never
function M.is_document(v)
  local t = types_type(v)
  return t == "M" or t == "L"
end

--- The number of elements of a list or map.
-- @tparam table t the list or map
-- @treturn integer
-- @raise never
function M.size_of(t)
  if types_type(t) == "L" then return #t end
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

-- Give empty lists their JSON marker, in place.
local function mark_empty(av)
  local l = av.L
  if l then
    if l[1] == nil then
      av.L = EMPTY_LIST
    else
      for i = 1, #l do mark_empty(l[i]) end
    end
    return
  end
  local m = av.M
  if m then
    for _, x in pairs(m) do mark_empty(x) end
  end
end

local function fail(fn, path, err)
  local msg = type(err) == "table" and err.message or tostring(err)
  error(string_format("dynafile.%s: %s: %s", fn, path, msg), 0)
end

--- The AttributeValue of a Lua value.
-- @param v the value
-- @tparam string fn the calling function's name, for messages
-- @tparam string path the attribute (or value) it is, for messages
-- @treturn table the AttributeValue (`{S = ...}`, `{N = ...}`, ...)
-- @raise on a value DynamoDB cannot hold, naming fn and the attribute
function M.encode_value(v, fn, path)
  local ok, av = pcall(ddb_encode, v)
  if not ok then fail(fn, path, av) end
  if av.L or av.M then mark_empty(av) end
  return av
end
local encode_value = M.encode_value

local types_number, null = types.number, types.null
local math_tointeger = math.tointeger
local tonumber, next, setmetatable = tonumber, next, setmetatable
local ARRAY_MT = types.array_mt

-- A DynamoDB N string as its Lua value: short integers directly, the
-- rest by dynafile.types.
local function number_of(s)
  if #s <= 15 and not s:find("[^%d%-]") then
    local n = tonumber(s)
    if n then return math_tointeger and math_tointeger(n) or n end
  end
  return types_number(s)
end

-- The decoder of answers from the server: the common types read here
-- directly, the others (B, sets, anything unusual) by dynafile.ddbjson,
-- which also validates.  A string or a number is taken as what its S or
-- N holds (an AttributeValue has one type: a server's answer carries no
-- other key beside them).
local decode
decode = function(av)
  local s = av.S
  if type(s) == "string" then return s end
  s = av.N
  if type(s) == "string" then return number_of(s) end
  local kind, v = next(av)
  if next(av, kind) == nil then
    if kind == "N" and type(v) == "string" then return number_of(v) end
    if kind == "BOOL" then return v end
    if kind == "NULL" and v == true then return null end
    if kind == "M" and type(v) == "table" then
      local out = {}
      for k, x in pairs(v) do
        if type(k) ~= "string" or type(x) ~= "table" then return ddb_decode(av) end
        out[k] = decode(x)
      end
      return out
    end
    if kind == "L" and type(v) == "table" then
      local out = {}
      local n = #v
      for i = 1, n do
        local x = v[i]
        if type(x) ~= "table" then return ddb_decode(av) end
        out[i] = decode(x)
      end
      if n == 0 then
        if next(v) ~= nil then return ddb_decode(av) end
        setmetatable(out, ARRAY_MT)
      end
      return out
    end
  end
  return ddb_decode(av)
end

--- The Lua value of an AttributeValue (from a server's answer).
M.decode_value = decode

-- The decoder in place, for an answer's tables, which nothing else holds:
-- a map's or a list's table becomes the Lua value's own (no second table
-- made and filled per map, list and item).  Only a table that is not an
-- AttributeValue goes to dynafile.ddbjson, whose message names it.
local take
local function take_or_fail(x)
  if type(x) == "table" then return take(x) end
  return ddb_decode(x)
end
take = function(av)
  local s = av.S
  if type(s) == "string" then return s end
  s = av.N
  if type(s) == "string" then return number_of(s) end
  local kind, v = next(av)
  if next(av, kind) == nil then
    if kind == "BOOL" then return v end
    if kind == "NULL" and v == true then return null end
    if kind == "M" and type(v) == "table" then
      for k, x in pairs(v) do
        if type(k) ~= "string" then return ddb_decode(av) end
        local xs = type(x) == "table" and x.S
        if type(xs) == "string" then v[k] = xs else v[k] = take_or_fail(x) end
      end
      return v
    end
    if kind == "L" and type(v) == "table" then
      local n = #v
      for i = 1, n do
        local x = v[i]
        local xs = type(x) == "table" and x.S
        if type(xs) == "string" then v[i] = xs else v[i] = take_or_fail(x) end
      end
      if n == 0 then
        if next(v) ~= nil then return ddb_decode(av) end
        setmetatable(v, ARRAY_MT)
      end
      return v
    end
  end
  return ddb_decode(av)
end

--- The Lua item of a map of AttributeValues from a server's answer,
-- made IN PLACE: `t` and the tables inside it become the item's (for an
-- answer decoded for this call only; `decode_item` leaves its argument
-- as it is).
-- @tparam table t `{attribute = AttributeValue}`, used up
-- @treturn table the item (`t` itself)
-- @raise on an AttributeValue dynafile.ddbjson refuses
function M.take_item(t)
  for k, av in pairs(t) do
    local s = type(av) == "table" and av.S
    if type(s) == "string" then t[k] = s else t[k] = take_or_fail(av) end
  end
  return t
end

--- An item as a map of AttributeValues.
-- @tparam table item the item
-- @tparam string fn the calling function's name, for messages
-- @treturn table `{attribute = AttributeValue}`
-- @raise on a value DynamoDB cannot hold, naming the attribute
function M.encode_item(item, fn)
  local out = {}
  for k, v in pairs(item) do
    if type(k) ~= "string" then
      error(string_format("dynafile.%s: attribute names must be strings, not %s", fn, type(k)), 0)
    end
    out[k] = encode_value(v, fn, k)
  end
  return out
end

--- A Lua item from a map of AttributeValues.
-- @tparam table t `{attribute = AttributeValue}` as the server sent it
-- @treturn table the item
-- @raise on an AttributeValue dynafile.ddbjson refuses
function M.decode_item(t)
  local out = {}
  for k, av in pairs(t) do out[k] = decode(av) end
  return out
end

return M
