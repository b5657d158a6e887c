--- dynafile.serve.itemjson: items straight to DynamoDB JSON text.
--
-- The hot reads (GetItem, Query, Scan) answer with items; turning each
-- into AttributeValue tables (dynafile.ddbjson) and those into JSON
-- (cjson) builds every value twice.  This writes the text directly from
-- the Lua item for the common values -- strings, numbers that are Lua
-- numbers, booleans, null, maps and lists -- and hands anything else
-- (decimals, binaries, sets, numbers out of DynamoDB's range) to
-- dynafile.ddbjson and cjson, so the output is byte for byte what the
-- general path writes, only faster.
--
-- Invariant: `item(t)` is valid JSON whose value equals that of
-- json.encode(values.encode_item(t)) (the text may differ: a "/" is not
-- escaped here).
-- @module dynafile.serve.itemjson

local cjson_module = require "cjson"
local types = require "dynafile.types"
local values = require "dynafile.serve.values"

local type, pairs, rawequal, getmetatable = type, pairs, rawequal, getmetatable
local string_format, string_byte = string.format, string.byte
local table_concat = table.concat
local math_floor = math.floor

local M = {}

local cjson = cjson_module.new()
cjson.encode_number_precision(14)
local NULL = types.null
local ARRAY_MT = types.array_mt
local tp = types.type
local EXACT = 2 ^ 53

-- A JSON string, by cjson (under LuaJIT a character-class string.find
-- costs four times cjson's whole encoding).  Attribute names repeat from
-- item to item: theirs are kept (up to NAMES_MAX, then started afresh).
local jstr = cjson.encode
M.string = jstr
local NAMES_MAX = 4096
local names, names_n = {}, 0
local function jname(k)
  local s = names[k]
  if s then return s end
  if names_n >= NAMES_MAX then names, names_n = {}, 0 end
  s = jstr(k)
  names[k] = s
  names_n = names_n + 1
  return s
end

-- Whether a short string goes into JSON as it is: no control character,
-- quote or backslash (a loop the JIT compiles costs less than calling
-- cjson for the strings most items hold; long ones go to cjson).
local PLAIN_MAX = 256
local function plain(s)
  for i = 1, #s do
    local c = string_byte(s, i)
    if c < 32 or c == 34 or c == 92 then return false end
  end
  return true
end

local value

-- A value through the general path (ddbjson + cjson).
local function general(v)
  local json = require "dynafile.serve.json"
  return json.encode(values.encode_value(v))
end

local function map(v, buf, n)
  buf[n + 1] = '{"M":{'
  n = n + 1
  local first = true
  for k, x in pairs(v) do
    if type(k) ~= "string" then return nil end
    if first then first = false else n = n + 1; buf[n] = "," end
    n = n + 1
    buf[n] = jname(k)
    n = n + 1
    buf[n] = ":"
    n = value(x, buf, n)
    if not n then return nil end
  end
  n = n + 1
  buf[n] = "}}"
  return n
end

local function list(v, buf, n)
  n = n + 1
  buf[n] = '{"L":['
  for i = 1, #v do
    if i > 1 then n = n + 1; buf[n] = "," end
    n = value(v[i], buf, n)
    if not n then return nil end
  end
  n = n + 1
  buf[n] = "]}"
  return n
end

-- Append the JSON of v to buf after position n; returns the new n, or
-- nil when v has no DynamoDB form (the caller reports it).
value = function(v, buf, n)
  local t = type(v)
  -- the pieces go into buf as they are: table.concat joins them once,
  -- where '{"S":' .. s .. "}" would make (and hash) a string per value
  if t == "string" then
    if #v <= PLAIN_MAX and plain(v) then
      buf[n + 1] = '{"S":"'
      buf[n + 2] = v
      buf[n + 3] = '"}'
    else
      buf[n + 1] = '{"S":'
      buf[n + 2] = jstr(v)
      buf[n + 3] = "}"
    end
    return n + 3
  end
  if t == "number" then
    if v == math_floor(v) and v > -EXACT and v < EXACT then
      buf[n + 1] = '{"N":"'
      buf[n + 2] = string_format("%d", v)
      buf[n + 3] = '"}'
      return n + 3
    end
    n = n + 1
    buf[n] = general(v)
    return n
  end
  if t == "boolean" then
    n = n + 1
    buf[n] = v and '{"BOOL":true}' or '{"BOOL":false}'
    return n
  end
  if rawequal(v, NULL) then
    n = n + 1
    buf[n] = '{"NULL":true}'
    return n
  end
  if t == "table" then
    local mt = getmetatable(v)
    if mt == nil or mt == ARRAY_MT then
      local kind = tp(v)
      if kind == "M" then return map(v, buf, n) end
      if kind == "L" then return list(v, buf, n) end
    end
  end
  n = n + 1
  buf[n] = general(v)
  return n
end

-- Append the JSON of an item to buf after position n; returns the new n.
local function put_item(item, buf, n)
  n = n + 1
  buf[n] = "{"
  local first = true
  for k, v in pairs(item) do
    if first then
      first = false
      n = n + 1
      buf[n] = jname(k)
    else
      n = n + 1
      buf[n] = ","
      n = n + 1
      buf[n] = jname(k)
    end
    n = n + 1
    buf[n] = ":"
    n = value(v, buf, n)
  end
  n = n + 1
  buf[n] = "}"
  return n
end

--- The DynamoDB JSON of an item: `{"attr":{"S":"x"},...}`.
function M.item(item)
  local buf = {}
  local n = put_item(item, buf, 0)
  return table_concat(buf, "", 1, n)
end

M.put_item = put_item

--- Append a JSON array of items to buf after position n.
-- @treturn number the new n
function M.put_items(list_of_items, buf, n)
  n = n + 1
  buf[n] = "["
  for i = 1, #list_of_items do
    if i > 1 then
      n = n + 1
      buf[n] = ","
    end
    n = put_item(list_of_items[i], buf, n)
  end
  n = n + 1
  buf[n] = "]"
  return n
end

--- A JSON array of items.
function M.items(list_of_items)
  local buf = {}
  local n = M.put_items(list_of_items, buf, 0)
  return table_concat(buf, "", 1, n)
end

return M
