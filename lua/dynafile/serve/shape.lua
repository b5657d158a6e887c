--- dynafile.serve.shape: request shapes and DynamoDB's two checks on them.
--
-- Each operation's request is described by a shape (api.lua), built with
-- the constructors below.  `check(shape, request)` then does what
-- DynamoDB's front end does, in its order:
--
-- 1. types: a value of the wrong JSON type is a SerializationException
--    ("STRING_VALUE cannot be converted to Integer", ...), raised at the
--    first one found;
-- 2. constraints: missing required members, lengths, ranges, patterns and
--    enums are collected (at most 10) into one ValidationException,
--    "2 validation errors detected: Value 'x' at 'tableName' failed to
--    satisfy constraint: Member must ...; Value ...".
--
-- The check edits the request in place where DynamoDB converts: JSON null
-- members are dropped, "true"/"false" strings become booleans, numbers
-- given for integers are truncated.
--
-- Invariant: after `check` returns, every member the shape declares has
-- the Lua type its shape says (or is nil), so the operations never test
-- types themselves.
-- @module dynafile.serve.shape

local errors = require "dynafile.serve.errors"
local json = require "dynafile.serve.json"

local type, pairs, ipairs, next, tostring = type, pairs, ipairs, next, tostring
local math_floor, math_huge = math.floor, math.huge
local string_format, string_lower, string_sub, string_upper, string_find =
  string.format, string.lower, string.sub, string.upper, string.find
local table_concat, table_sort = table.concat, table.sort
local NULL = json.null

local M = {}

-- ------------------------------------------------------------ constructors
-- Every constructor takes an options table:
--   required = true        the member must be present
--   min, max               numbers: the allowed range (inclusive)
--   len_min, len_max       strings, lists, maps: the allowed length
--   pattern, pattern_text  strings: a Lua pattern anchored at both ends,
--                          and the Java regex DynamoDB prints
--   enum = {...}           strings: the allowed values, in DynamoDB's order

local function shape(kind, opts, extra)
  local s = opts or {}
  s.kind = kind
  if extra then for k, v in pairs(extra) do s[k] = v end end
  return s
end

function M.string(opts) return shape("string", opts) end
function M.integer(opts) return shape("integer", opts, { java = "Integer" }) end
function M.long(opts) return shape("integer", opts, { java = "Long" }) end
function M.double(opts) return shape("double", opts, { java = "Double" }) end
function M.boolean(opts) return shape("boolean", opts) end
function M.blob(opts) return shape("blob", opts) end
--- An AttributeValue (checked further by the value codec).
function M.value(opts) return shape("value", opts) end
--- A list of `member`.
function M.list(member, opts) return shape("list", opts, { member = member }) end
--- A map from strings (checked by `key`, a string shape) to `member`;
-- `java` names the value class in SerializationException messages.
function M.map(member, opts, java)
  return shape("map", opts, { member = member, java = java or "AttributeValue" })
end
--- A structure: `fields` is a list of {name, shape}, in the order
-- DynamoDB reports them; `java` is its class name for messages.
function M.struct(java, fields, opts)
  local s = shape("struct", opts, { java = java, fields = fields })
  return s
end
--- An item or key: a map from attribute names to AttributeValues.
function M.item(opts)
  return M.map(M.value(), opts)
end

-- ------------------------------------------------------------ messages

local function lower_first(s)
  return string_lower(string_sub(s, 1, 1)) .. string_sub(s, 2)
end
M.lower_first = lower_first

-- DynamoDB prints the offending value the way Java prints it.
local function java_string(v)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" then
    if v == math_floor(v) and v > -1e15 and v < 1e15 then return string_format("%d", v) end
    return tostring(v)
  end
  if t == "boolean" then return tostring(v) end
  if t == "table" then
    if v[1] ~= nil or next(v) == nil then
      local parts = {}
      for i = 1, #v do parts[i] = java_string(v[i]) end
      return "[" .. table_concat(parts, ", ") .. "]"
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = tostring(k) end
    table_sort(keys)
    local parts = {}
    for i, k in ipairs(keys) do parts[i] = k .. "=" .. java_string(v[k]) end
    return "{" .. table_concat(parts, ", ") .. "}"
  end
  return "null"
end
M.java_string = java_string

-- The value as Java prints it, knowing its shape: structures print as
-- "Name(field=value, ...)", as DynamoDB's messages show them.
local function render(v, s)
  if v == nil or v == false and (not s or s.kind ~= "boolean") then return "null" end
  if s and s.kind == "struct" and type(v) == "table" then
    local parts = {}
    for i, f in ipairs(s.fields) do
      parts[i] = lower_first(f[1]) .. "=" .. render(v[f[1]], f[2])
    end
    return s.java .. "(" .. table_concat(parts, ", ") .. ")"
  end
  if s and s.kind == "list" and type(v) == "table" then
    local parts = {}
    for i = 1, #v do parts[i] = render(v[i], s.member) end
    return "[" .. table_concat(parts, ", ") .. "]"
  end
  if s and s.kind == "map" and type(v) == "table" then
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = tostring(k) end
    table_sort(keys)
    local parts = {}
    for i, k in ipairs(keys) do parts[i] = k .. "=" .. render(v[k], s.member) end
    return "{" .. table_concat(parts, ", ") .. "}"
  end
  return java_string(v)
end
M.render = render

local function constraint(errs, value, path, msg, s)
  if #errs >= 10 then return end
  if s and s.display then path = s.display end
  local shown
  if s and s.hide_value and value ~= nil then
    shown = ""
  else
    shown = value == nil and "null " or ("'" .. render(value, s) .. "' ")
  end
  errs[#errs + 1] = string_format("Value %sat '%s' failed to satisfy constraint: %s",
    shown, path, msg)
end

-- ------------------------------------------------------------ type check

local function serialization(msg) errors.serialization(msg) end

local function number_word(v)
  if v == math_floor(v) then return "NUMBER_VALUE" end
  return "DECIMAL_VALUE"
end

-- Check the JSON type of v against shape s; returns the (converted) value.
-- Raises SerializationException.
local check_type

local function check_struct_types(s, t)
  for _, f in ipairs(s.fields) do
    local name, fs = f[1], f[2]
    local v = t[name]
    if v == NULL then
      t[name] = nil
    elseif v ~= nil then
      t[name] = check_type(fs, v)
    end
  end
end

check_type = function(s, v)
  local kind, tv = s.kind, type(v)
  if kind == "string" then
    if tv == "string" then return v end
    if tv == "number" then serialization(number_word(v) .. " cannot be converted to String") end
    if tv == "boolean" then
      serialization((v and "TRUE_VALUE" or "FALSE_VALUE") .. " cannot be converted to String")
    end
    if tv == "table" and v[1] ~= nil then
      serialization("Unrecognized collection type class java.lang.String")
    end
    serialization("Start of structure or map found where not expected")
  elseif kind == "integer" or kind == "double" then
    if tv == "number" then
      if kind == "integer" then
        if v ~= v or v == math_huge or v == -math_huge then
          serialization("NUMBER_VALUE cannot be converted to " .. s.java)
        end
        return v >= 0 and math_floor(v) or -math_floor(-v)
      end
      return v
    end
    if tv == "string" then serialization("STRING_VALUE cannot be converted to " .. s.java) end
    if tv == "boolean" then
      serialization((v and "TRUE_VALUE" or "FALSE_VALUE") .. " cannot be converted to " .. s.java)
    end
    if tv == "table" and v[1] ~= nil then
      serialization("Unrecognized collection type class java.lang." .. s.java)
    end
    serialization("Start of structure or map found where not expected")
  elseif kind == "boolean" then
    if tv == "boolean" then return v end
    if tv == "string" then
      local u = string_upper(v)
      if u == "TRUE" or u == "1" or u == "YES" then return true end
      if u == "FALSE" or u == "0" or u == "NO" then return false end
      serialization("Unexpected token received from parser")
    end
    if tv == "number" then serialization(number_word(v) .. " cannot be converted to Boolean") end
    if tv == "table" and v[1] ~= nil then
      serialization("Unrecognized collection type class java.lang.Boolean")
    end
    serialization("Start of structure or map found where not expected")
  elseif kind == "blob" then
    if tv == "string" then return v end
    if tv == "table" then
      if v[1] ~= nil then serialization("Unrecognized collection type class "
        .. "java.nio.ByteBuffer") end
      serialization("Start of structure or map found where not expected")
    end
    serialization("only base-64-encoded strings are convertible to bytes")
  elseif kind == "list" then
    if tv ~= "table" then serialization("Unexpected field type") end
    if v[1] == nil and next(v) ~= nil then
      serialization("Start of structure or map found where not expected")
    end
    local m = s.member
    for i = 1, #v do
      local x = v[i]
      if x == NULL then
        v[i] = false -- a null member: reported by the constraint check
      else
        v[i] = check_type(m, x)
      end
    end
    return v
  elseif kind == "map" then
    if tv ~= "table" then serialization("Unexpected field type") end
    if v[1] ~= nil then
      serialization("Unrecognized collection type java.util.Map<java.lang.String, "
        .. "com.amazonaws.dynamodb.v20120810." .. s.java .. ">")
    end
    local m = s.member
    for k, x in pairs(v) do
      if x == NULL then
        v[k] = false -- a null value: reported by the constraint check
      else
        v[k] = check_type(m, x)
      end
    end
    return v
  elseif kind == "struct" then
    if tv ~= "table" then serialization("Unexpected field type") end
    if v[1] ~= nil then
      serialization("Unrecognized collection type class com.amazonaws.dynamodb.v20120810."
        .. s.java)
    end
    check_struct_types(s, v)
    return v
  elseif kind == "value" then
    if tv ~= "table" then serialization("Unexpected value type in payload") end
    if v[1] ~= nil then
      serialization("Unrecognized collection type class "
        .. "com.amazonaws.dynamodb.v20120810.AttributeValue")
    end
    return v
  end
  return v
end

-- ------------------------------------------------------------ constraints

local function length_of(v)
  if type(v) == "string" then return #v end
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  return n
end

local check_constraints

local function check_value(s, v, path, errs)
  if v == nil or v == false and s.kind ~= "boolean" then
    if s.required or v == false then constraint(errs, nil, path, "Member must not be null", s) end
    return
  end
  local kind = s.kind
  if s.enum then
    local ok = false
    for _, e in ipairs(s.enum) do if e == v then ok = true break end end
    if not ok and not (errs.first_enum_only and errs.enum_seen) then
      constraint(errs, v, path, "Member must satisfy enum value set: ["
        .. table_concat(s.enum, ", ") .. "]", s)
      errs.enum_seen = true
    end
  end
  if s.min and v < s.min then
    constraint(errs, v, path, "Member must have value greater than or equal to "
      .. java_string(s.min), s)
  end
  if s.max and v > s.max then
    constraint(errs, v, path, "Member must have value less than or equal to "
      .. java_string(s.max), s)
  end
  local arn = s.arn_ok and string_sub(v, 1, 4) == "arn:" -- checked by the operation
  if not arn and (s.len_min or s.len_max) then
    local n = length_of(v)
    if n == 0 and s.stop_when_empty then
      -- DynamoDB reports an empty table name alone, and nothing after it
      constraint(errs, v, path, "Member must have length greater than or equal to " .. s.len_min, s)
      errs.stop = true
      return
    end
    if s.len_min and n < s.len_min then
      constraint(errs, v, path, "Member must have length greater than or equal to " .. s.len_min, s)
    end
    if s.len_max and n > s.len_max then
      constraint(errs, v, path, "Member must have length less than or equal to " .. s.len_max, s)
    end
  end
  if s.arn_ok and string_sub(v, 1, 4) == "arn:" then return end
  if s.pattern and not string_find(v, s.pattern) then
    constraint(errs, v, path, "Member must satisfy regular expression pattern: " .. s.pattern_text,
      s)
  end
  if kind == "list" then
    local m = s.member
    for i = 1, #v do check_value(m, v[i], path .. "." .. i .. ".member", errs) end
  elseif kind == "map" then
    local m = s.member
    if not s.key and m.kind == "value" then
      -- an item or ExpressionAttributeValues: only a null value (false
      -- here) has anything to report
      local any = false
      for _, x in pairs(v) do
        if x == false then
          any = true
          break
        end
      end
      if not any then return end
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table_sort(keys)
    for _, k in ipairs(keys) do
      if s.key then
        local ks = s.key
        if (ks.len_min and #k < ks.len_min) or (ks.len_max and #k > ks.len_max) then
          local parts = {}
          if ks.len_min then parts[#parts + 1] = "Member must have length greater than or equal "
            .. "to " .. ks.len_min end
          if ks.len_max then parts[#parts + 1] = "Member must have length less than or equal to "
            .. "" .. ks.len_max end
          constraint(errs, v, path, "Map keys must satisfy constraint: [" .. table_concat(parts,
            ", ") .. "]", s)
        end
      end
      if m.kind ~= "value" or v[k] == false then
        check_value(m, v[k], path .. "." .. k .. ".member", errs)
      end
    end
  elseif kind == "struct" then
    check_constraints(s, v, path .. ".", errs)
  end
end

-- The member names as DynamoDB's paths print them (first letter lower
-- case), made once per field.
local lowered = setmetatable({}, { __mode = "k" })

check_constraints = function(s, t, prefix, errs)
  local fields = s.fields
  for i = 1, #fields do
    if errs.stop then return end
    local f = fields[i]
    local fs, v = f[2], t[f[1]]
    -- an absent optional member has nothing to check (check_value would
    -- return at once): its path is not even made
    if v ~= nil or fs.required then
      local low = lowered[f]
      if not low then
        low = lower_first(f[1])
        lowered[f] = low
      end
      check_value(fs, v, prefix .. low, errs)
    end
  end
end

--- Check a request against its shape, as described at the top.
-- @tparam table s the operation's shape (a struct)
-- @tparam table req the decoded request body
-- @raise SerializationException or ValidationException (errors module)
function M.check(s, req)
  for _, f in ipairs(s.fields) do
    local name = f[2].present
    if name and (req[f[1]] == nil or req[f[1]] == NULL) then
      errors.validation(string_format(
        "The parameter '%s' is required but was not present in the request", name))
    end
  end
  check_struct_types(s, req)
  local errs = { first_enum_only = s.first_enum_only }
  check_constraints(s, req, "", errs)
  local n = #errs
  if n > 0 then
    errors.validation(string_format("%d validation error%s detected: %s", n,
      n > 1 and "s" or "", table_concat(errs, "; ")))
  end
  return req
end

--- The table-name pattern, in Lua and as DynamoDB prints it.
M.NAME_PATTERN = "^[a-zA-Z0-9_.-]+$"
M.NAME_PATTERN_TEXT = "[a-zA-Z0-9_.-]+"

return M
