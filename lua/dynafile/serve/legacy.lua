--- dynafile.serve.legacy: the parameters older DynamoDB code still sends
-- -- Expected, ConditionalOperator, AttributesToGet, AttributeUpdates,
-- KeyConditions, QueryFilter and ScanFilter -- checked as DynamoDB checks
-- them and turned into what the operations use: predicates on items,
-- projections, update functions and query key conditions.
--
-- Values are dynafile's Lua values (dynafile.types); comparisons follow
-- DynamoDB: a value of another type never matches, numbers compare as
-- decimals, binaries and strings bytewise, sets and documents by content.
--
-- Invariant: every function here is pure apart from the errors it raises
-- (ValidationException with DynamoDB's messages); the item it is given
-- is never changed in place.
-- @module dynafile.serve.legacy

local types = require "dynafile.types"
local errors = require "dynafile.serve.errors"
local values = require "dynafile.serve.values"

local pairs, ipairs, setmetatable = pairs, ipairs, setmetatable
local string_sub, string_find = string.sub, string.find

local M = {}

local validation = errors.validation
local INVALID = "One or more parameter values were invalid: "
local tp = types.type
local compare_numbers = types.compare_numbers
local binary_bytes = types.binary_bytes
local is_set = types.is_set

-- ------------------------------------------------------------ comparisons

local equal

local function same_set(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do
    local found = false
    for j = 1, #b do
      if equal(a[i], b[j]) then found = true break end
    end
    if not found then return false end
  end
  return true
end

--- DynamoDB equality of two Lua values (same type and content).
equal = function(a, b)
  local ta, tb = tp(a), tp(b)
  if ta == nil or ta ~= tb then return false end
  if ta == "S" or ta == "BOOL" then return a == b end
  if ta == "NULL" then return true end
  if ta == "N" then return compare_numbers(a, b) == 0 end
  if ta == "B" then return binary_bytes(a) == binary_bytes(b) end
  if ta == "SS" or ta == "NS" or ta == "BS" then return same_set(a, b) end
  if ta == "L" then
    if #a ~= #b then return false end
    for i = 1, #a do if not equal(a[i], b[i]) then return false end end
    return true
  end
  -- M
  for k, v in pairs(a) do
    if not equal(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end
M.equal = equal

--- Order two values of a scalar type: -1, 0, 1, or nil when they are not
-- both S, both N or both B.
local function order(a, b)
  local ta = tp(a)
  if ta ~= tp(b) then return nil end
  if ta == "N" then return compare_numbers(a, b) end
  if ta == "S" then
    if a == b then return 0 end
    return a < b and -1 or 1
  end
  if ta == "B" then
    local x, y = binary_bytes(a), binary_bytes(b)
    if x == y then return 0 end
    return x < y and -1 or 1
  end
  return nil
end
M.order = order

-- contains(haystack, needle) for CONTAINS: a substring of a string or a
-- binary, an element of a set or a list.
local function contains(hay, needle)
  local th, tn = tp(hay), tp(needle)
  if th == "S" and tn == "S" then return string_find(hay, needle, 1, true) ~= nil end
  if th == "B" and tn == "B" then
    return string_find(binary_bytes(hay), binary_bytes(needle), 1, true) ~= nil
  end
  if (th == "SS" and tn == "S") or (th == "NS" and tn == "N") or (th == "BS" and tn == "B") then
    for i = 1, #hay do if equal(hay[i], needle) then return true end end
    return false
  end
  if th == "L" then
    for i = 1, #hay do if equal(hay[i], needle) then return true end end
    return false
  end
  return false
end
M.contains = contains

local function begins_with(v, prefix)
  local tv = tp(v)
  if tv == "S" and tp(prefix) == "S" then return string_sub(v, 1, #prefix) == prefix end
  if tv == "B" and tp(prefix) == "B" then
    local b, p = binary_bytes(v), binary_bytes(prefix)
    return string_sub(b, 1, #p) == p
  end
  return false
end
M.begins_with = begins_with

-- ------------------------------------------------------------ conditions

local COUNTS = {
  EQ = 1, NE = 1, LE = 1, LT = 1, GE = 1, GT = 1, CONTAINS = 1, NOT_CONTAINS = 1,
  BEGINS_WITH = 1, NULL = 0, NOT_NULL = 0, BETWEEN = 2,
}
local SCALAR = { S = true, N = true, B = true }
local ALLOWED = {
  EQ = { S = true, N = true, B = true, SS = true, NS = true, BS = true, BOOL = true, NULL = true,
    L = true, M = true },
  NE = { S = true, N = true, B = true, SS = true, NS = true, BS = true, BOOL = true, NULL = true,
    L = true, M = true },
  LE = SCALAR, LT = SCALAR, GE = SCALAR, GT = SCALAR, BETWEEN = SCALAR, IN = SCALAR,
  CONTAINS = { S = true, N = true, B = true, BOOL = true, NULL = true, L = true, M = true,
    SS = true, NS = true, BS = true },
  NOT_CONTAINS = { S = true, N = true, B = true, BOOL = true, NULL = true, L = true, M = true,
    SS = true, NS = true, BS = true },
  BEGINS_WITH = { S = true, B = true },
}

-- One comparison on an attribute value (nil when missing).
local function test(op, v, args)
  if op == "NULL" then return v == nil end
  if op == "NOT_NULL" then return v ~= nil end
  if op == "NE" then return v == nil or not equal(v, args[1]) end
  if op == "NOT_CONTAINS" then return v == nil or not contains(v, args[1]) end
  if v == nil then return false end
  if op == "EQ" then return equal(v, args[1]) end
  if op == "CONTAINS" then return contains(v, args[1]) end
  if op == "BEGINS_WITH" then return begins_with(v, args[1]) end
  if op == "IN" then
    for _, a in ipairs(args) do if equal(v, a) then return true end end
    return false
  end
  if op == "BETWEEN" then
    local lo, hi = order(v, args[1]), order(v, args[2])
    return lo ~= nil and hi ~= nil and lo >= 0 and hi <= 0
  end
  local c = order(v, args[1])
  if c == nil then return false end
  if op == "LT" then return c < 0 end
  if op == "LE" then return c <= 0 end
  if op == "GT" then return c > 0 end
  if op == "GE" then return c >= 0 end
  return false
end
M.test = test

-- Check and decode one comparison's AttributeValueList.
local function comparison_args(op, list)
  local args = {}
  for i, av in ipairs(list or {}) do args[i] = values.value(av) end
  local want = COUNTS[op]
  local n = #args
  if (want and n ~= want) or (op == "IN" and n < 1) then
    validation(INVALID .. "Invalid number of argument(s) for the %s ComparisonOperator", op)
  end
  if n > 0 then
    local t1 = tp(args[1])
    for i = 2, n do
      if tp(args[i]) ~= t1 then
        validation(INVALID .. "AttributeValues inside AttributeValueList must be of same type")
      end
    end
    local allowed = ALLOWED[op]
    if allowed then
      for i = 1, n do
        local t = tp(args[i])
        if not allowed[t] then
          validation(INVALID .. "ComparisonOperator %s is not valid for %s AttributeValue type",
            op, t)
        end
      end
    end
    if op == "BETWEEN" then
      local c = order(args[1], args[2])
      if c and c > 0 then
        validation("The BETWEEN condition was provided a range where the lower bound is greater "
          .. "than the upper bound")
      end
    end
  end
  return args
end

--- A predicate from a QueryFilter or ScanFilter map and its
-- ConditionalOperator.
-- @treturn function item -> boolean
function M.filter(conds, operator)
  local list = {}
  for attr, c in pairs(conds) do
    list[#list + 1] = { attr, c.ComparisonOperator, comparison_args(c.ComparisonOperator,
      c.AttributeValueList) }
  end
  local any = operator == "OR"
  return function(item)
    if #list == 0 then return true end
    for _, c in ipairs(list) do
      local ok = test(c[2], item and item[c[1]], c[3])
      if any and ok then return true end
      if not any and not ok then return false end
    end
    return not any
  end
end

--- A predicate from an Expected map (PutItem, UpdateItem, DeleteItem)
-- and its ConditionalOperator.
-- @treturn function old_item_or_nil -> boolean
function M.expected(expected, operator)
  local list = {}
  for attr, c in pairs(expected) do
    if c.AttributeValueList and c.Value then
      validation(INVALID
        .. "Value and AttributeValueList cannot be used together for Attribute: %s", attr)
    end
    local op = c.ComparisonOperator
    if op then
      if c.Exists ~= nil then
        validation(INVALID
          .. "Exists and ComparisonOperator cannot be used together for Attribute: %s", attr)
      end
      if op ~= "NULL" and op ~= "NOT_NULL" and not c.AttributeValueList and not c.Value then
        validation(INVALID .. "Value or AttributeValueList must be used with ComparisonOperator: "
          .. "%s for Attribute: %s", op, attr)
      end
      local args = comparison_args(op, c.AttributeValueList or (c.Value and { c.Value }))
      list[#list + 1] = { attr, op, args }
    elseif c.AttributeValueList then
      validation(INVALID .. "AttributeValueList can only be used with a ComparisonOperator for "
        .. "Attribute: %s", attr)
    else
      local exists = c.Exists == nil or c.Exists
      if exists and c.Value == nil then
        validation(INVALID .. "Value must be provided when Exists is %s for Attribute: %s",
          c.Exists == nil and "null" or "true", attr)
      elseif not exists and c.Value ~= nil then
        validation(INVALID .. "Value cannot be used when Exists is false for Attribute: %s", attr)
      end
      if exists then
        list[#list + 1] = { attr, "EQ", { values.value(c.Value) } }
      else
        list[#list + 1] = { attr, "NULL", {} }
      end
    end
  end
  local any = operator == "OR"
  return function(item)
    if #list == 0 then return true end
    for _, c in ipairs(list) do
      local ok = test(c[2], item and item[c[1]], c[3])
      if any and ok then return true end
      if not any and not ok then return false end
    end
    return not any
  end
end

--- A projection from AttributesToGet (top-level names).
-- @treturn function item -> item
function M.attributes_to_get(names)
  local seen = {}
  for _, n in ipairs(names) do
    if seen[n] then validation(INVALID .. "Duplicate value in attribute name: %s", n) end
    seen[n] = true
  end
  return function(item)
    local out = {}
    for _, n in ipairs(names) do out[n] = item[n] end
    return out
  end, names
end

-- ------------------------------------------------------------ AttributeUpdates

local function set_union(a, b)
  local out = {}
  for i = 1, #a do out[i] = a[i] end
  for i = 1, #b do
    local found = false
    for j = 1, #a do if equal(a[j], b[i]) then found = true break end end
    if not found then out[#out + 1] = b[i] end
  end
  return types.set(out, tp(a):sub(1, 1))
end

local function set_difference(a, b)
  local out = {}
  for i = 1, #a do
    local found = false
    for j = 1, #b do if equal(a[i], b[j]) then found = true break end end
    if not found then out[#out + 1] = a[i] end
  end
  return out
end

--- An update function from an AttributeUpdates map.
-- @tparam table rec the table's record (key attributes may not change)
-- @treturn function old_or_nil, key -> new item, changed attribute names
function M.attribute_updates(rec, updates)
  local list = {}
  local key_names = { [rec.keys.hash.name] = true }
  if rec.keys.range then key_names[rec.keys.range.name] = true end
  for attr, u in pairs(updates) do
    if key_names[attr] then
      validation(INVALID .. "Cannot update attribute %s. This attribute is part of the key", attr)
    end
    local action = u.Action or "PUT"
    local v = u.Value and values.value(u.Value)
    if action == "PUT" and v == nil then
      validation(INVALID .. "Only DELETE action is allowed when no attribute value is specified")
    end
    if action == "ADD" then
      if v == nil then
        validation(INVALID .. "Only DELETE action is allowed when no attribute value is specified")
      end
      local t = tp(v)
      if t ~= "N" and not is_set(v) and t ~= "L" then
        validation(INVALID .. "Action ADD is not supported for the type %s", t)
      end
    end
    if action == "DELETE" and v ~= nil and not is_set(v) then
      validation(INVALID .. "DELETE action with value is not supported for the type %s", tp(v))
    end
    list[#list + 1] = { attr, action, v }
  end
  return function(old, key)
    local new = {}
    if old then for k, x in pairs(old) do new[k] = x end end
    for k, x in pairs(key) do new[k] = x end
    local changed = {}
    for _, u in ipairs(list) do
      local attr, action, v = u[1], u[2], u[3]
      local cur = new[attr]
      if action == "PUT" then
        new[attr] = v
      elseif action == "DELETE" then
        if v == nil then
          new[attr] = nil
        elseif cur ~= nil then
          if tp(cur) ~= tp(v) then
            validation("Type mismatch for attribute to update")
          end
          local rest = set_difference(cur, v)
          if #rest == 0 then new[attr] = nil else new[attr] = types.set(rest, tp(cur):sub(1, 1)) end
        end
      else -- ADD
        if cur == nil then
          new[attr] = v
        elseif tp(v) == "N" then
          if tp(cur) ~= "N" then validation("Type mismatch for attribute to update") end
          new[attr] = M.add_numbers(cur, v)
        elseif is_set(v) then
          if tp(cur) ~= tp(v) then validation("Type mismatch for attribute to update") end
          new[attr] = set_union(cur, v)
        else -- a list: append
          if tp(cur) ~= "L" then validation("Type mismatch for attribute to update") end
          local l = setmetatable({}, types.array_mt)
          for i = 1, #cur do l[i] = cur[i] end
          for i = 1, #v do l[#l + 1] = v[i] end
          new[attr] = l
        end
      end
      changed[#changed + 1] = attr
    end
    return new, changed
  end
end

--- Exact addition of two DynamoDB numbers (Lua numbers or decimals).
function M.add_numbers(a, b)
  local sa, sb = types.number_string(a), types.number_string(b)
  local r = require("dynafile.serve.decimal").add(sa, sb)
  local ok, msg = types.number_in_range(types.decimal(r))
  if not ok then validation(msg) end
  return types.number(r)
end

-- ------------------------------------------------------------ KeyConditions

--- The query options for a KeyConditions map against a key schema:
-- {pk = value, cond = option name, lo = value, hi = value}.
function M.key_conditions(kc, keys)
  local n = 0
  for _ in pairs(kc) do n = n + 1 end
  if n > 2 then validation("Conditions can be of length 1 or 2 only") end
  local hash_cond = kc[keys.hash.name]
  for attr in pairs(kc) do
    if attr ~= keys.hash.name and (not keys.range or attr ~= keys.range.name) then
      validation("Query condition missed key schema element: %s", keys.hash.name)
    end
  end
  if not hash_cond then
    validation("Query condition missed key schema element: %s", keys.hash.name)
  end
  local hargs = comparison_args(hash_cond.ComparisonOperator, hash_cond.AttributeValueList)
  if hash_cond.ComparisonOperator ~= "EQ" then
    validation("Query key condition not supported")
  end
  if tp(hargs[1]) ~= keys.hash.type then
    validation("One or more parameter values were invalid: Condition parameter type does not "
      .. "match schema type")
  end
  local out = { pk = hargs[1] }
  local rc = keys.range and kc[keys.range.name]
  if rc then
    local op = rc.ComparisonOperator
    local args = comparison_args(op, rc.AttributeValueList)
    local map = { EQ = "eq", LT = "lt", LE = "le", GT = "gt", GE = "ge", BETWEEN = "between",
      BEGINS_WITH = "begins_with" }
    if not map[op] then validation("Query key condition not supported") end
    for _, a in ipairs(args) do
      if tp(a) ~= keys.range.type then
        validation("One or more parameter values were invalid: Condition parameter type does not "
          .. "match schema type")
      end
    end
    out.cond, out.lo, out.hi = map[op], args[1], args[2]
  end
  return out
end

return M
