--- dynafile.serve.size: DynamoDB's size of items and values, in bytes.
--
-- The rules (DynamoDB Developer Guide, "Item sizes and formats"): an
-- attribute costs the UTF-8 length of its name plus its value; strings
-- and binaries their length; a number one byte per pair of decimal
-- digits, the pairs aligned on the decimal point, from the first pair
-- holding a significant digit to the last, plus one, plus one more when
-- negative (what DynamoDB charges: 100.5 costs 4, 1.5 costs 3, 15 costs
-- 2; the guide's "one byte per two significant digits" is approximate);
-- booleans and nulls one byte; a list or map three bytes plus one byte
-- per element plus the elements (and, for a map, the names);
-- a set the sum of its elements.  These sizes decide the 400 KB item
-- limit, the 1 MB page of Query and Scan and the capacity units reported.
--
-- Invariant: pure functions of Lua values (dynafile.types' forms).
-- @module dynafile.serve.size

local types = require "dynafile.types"

local type, pairs, rawequal = type, pairs, rawequal
local string_gsub, string_sub = string.gsub, string.sub
local tonumber = tonumber
local math_floor = math.floor

local M = {}

local NULL = types.null
local number_string = types.number_string
local binary_bytes = types.binary_bytes
local is_set = types.is_set
local tp = types.type

M.MAX_ITEM = 400 * 1024
M.MAX_HASH_KEY = 2048
M.MAX_RANGE_KEY = 1024

-- Bytes of a number: its base-100 digits (pairs of decimal digits aligned
-- on the decimal point) from the first significant one to the last, plus
-- one, plus one when negative.  A digit of place value 10^e is in pair
-- floor(e / 2).
local EXACT = 2 ^ 53
local function pairs_between(e_first, e_last)
  return math_floor(e_first / 2) - math_floor(e_last / 2) + 1
end

local function number_size(v)
  if type(v) == "number" and v == math_floor(v) and v > -EXACT and v < EXACT then
    -- an integer: count its digits without making its text
    local neg = v < 0
    if neg then v = -v end
    if v == 0 then return 1 end
    local zeros = 0
    while v % 10 == 0 do
      v = v / 10
      zeros = zeros + 1
    end
    local digits, p = 1, 10
    while v >= p do
      digits = digits + 1
      p = p * 10
    end
    return pairs_between(digits + zeros - 1, zeros) + 1 + (neg and 1 or 0)
  end
  local s = number_string(v)
  local sign, int, frac, exp = s:match("^(-?)(%d*)%.?(%d*)[eE]?([-+]?%d*)$")
  if not sign then return 1 end
  local digits = int .. frac
  local point = #int + (tonumber(exp) or 0) -- digits before the decimal point
  local lead = #(digits:match("^0*"))
  if lead == #digits then return 1 end -- zero, never negative
  digits = string_sub(digits, lead + 1)
  point = point - lead
  digits = string_gsub(digits, "0+$", "")
  return pairs_between(point - 1, point - #digits) + 1 + (sign == "-" and 1 or 0)
end

local value_size

local function container_size(v, is_map)
  local n = 3
  if is_map then
    for k, x in pairs(v) do n = n + #k + 1 + value_size(x) end
  else
    for i = 1, #v do n = n + 1 + value_size(v[i]) end
  end
  return n
end

value_size = function(v)
  local t = type(v)
  if t == "string" then return #v end
  if t == "number" then return number_size(v) end
  if t == "boolean" or rawequal(v, NULL) then return 1 end
  local b = binary_bytes(v)
  if b then return #b end
  if is_set(v) then
    local n = 0
    for i = 1, #v do n = n + value_size(v[i]) end
    return n
  end
  local kind = tp(v)
  if kind == "N" then return number_size(v) end
  if kind == "L" then return container_size(v, false) end
  if kind == "M" then return container_size(v, true) end
  return 0
end
M.value = value_size

--- The size of an item.
function M.item(item)
  local n = 0
  for k, v in pairs(item) do n = n + #k + value_size(v) end
  return n
end

--- The size of a key value (for the key size limits).
function M.key(v)
  if type(v) == "string" then return #v end
  local b = binary_bytes(v)
  if b then return #b end
  return value_size(v)
end

return M
