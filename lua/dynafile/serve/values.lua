--- dynafile.serve.values: items and keys of requests and responses.
--
-- AttributeValues become dynafile's Lua values through dynafile.ddbjson
-- (lossless: exact decimals, binary, sets) and back.  This module adds
-- what depends on a table: keys checked against the key schema (types,
-- empty values, sizes), items checked against the table's and indexes'
-- key types and DynamoDB's 400 KB limit, in DynamoDB's words.
--
-- Invariant: a value that passed `item` or `key` can be stored and read
-- back unchanged (the binding stores every DynamoDB type: B, sets, exact
-- decimals, LuaJIT's int64 integers); the checks raise DynamoDB errors (errors.lua) and never
-- let a request through half-checked.
-- @module dynafile.serve.values

local ddbjson = require "dynafile.ddbjson"
local types = require "dynafile.types"
local errors = require "dynafile.serve.errors"
local json = require "dynafile.serve.json"
local size = require "dynafile.serve.size"

local pairs, ipairs, pcall, error, type = pairs, ipairs, pcall, error, type

local M = {}

local validation = errors.validation
local INVALID = "One or more parameter values were invalid: "
local MISMATCH = "The provided key element does not match the schema"
local tp = types.type

-- Re-raise a ddbjson error as the DynamoDB error it names.
local function rethrow(e)
  if ddbjson.is_error(e) then errors.raise(e.code, e.message) end
  error(e, 0)
end

-- DynamoDB accepts {"NULL": false} (since 2026) and stores it as
-- {"NULL": true}; dynafile.ddbjson refuses it.  Only when the decoder
-- refused a request for that reason is the AttributeValue tree walked and
-- each NULL false made true (the common path pays nothing).
local NULL_FALSE = "Null attribute value types must have the value of true"

local function null_false_to_true(av)
  if type(av) ~= "table" then return end
  if av.NULL == false then av.NULL = true end
  local m, l = av.M, av.L
  if type(m) == "table" then
    for _, x in pairs(m) do null_false_to_true(x) end
  elseif type(l) == "table" then
    for _, x in ipairs(l) do null_false_to_true(x) end
  end
end

local function decode(fn, t, is_item)
  local ok, v = pcall(fn, t)
  if ok then return v end
  if ddbjson.is_error(v) and type(v.message) == "string"
    and string.find(v.message, NULL_FALSE, 1, true) and type(t) == "table" then
    if is_item then
      for _, av in pairs(t) do null_false_to_true(av) end
    else
      null_false_to_true(t)
    end
    ok, v = pcall(fn, t)
    if ok then return v end
  end
  rethrow(v)
end

--- The Lua value of an AttributeValue.
function M.value(av)
  return decode(ddbjson.decode_value, av, false)
end

--- The Lua item of an AttributeValue map (every value checked).
function M.item(t)
  return decode(ddbjson.decode_item, t, true)
end

-- Empty lists of an encoded value become json.EMPTY_ARRAY (an empty L, and
-- never-empty sets stay as they are).
local function fix_empty(av)
  local l = av.L
  if l then
    if l[1] == nil then
      av.L = json.EMPTY_ARRAY
    else
      for i = 1, #l do fix_empty(l[i]) end
    end
    return
  end
  local m = av.M
  if m then
    for _, x in pairs(m) do fix_empty(x) end
  end
end

--- The AttributeValue map of a stored item, for a response.
function M.encode_item(item)
  local ok, t = pcall(ddbjson.encode_item, item)
  if not ok then rethrow(t) end
  for _, av in pairs(t) do
    if av.L or av.M then fix_empty(av) end
  end
  return t
end

--- The AttributeValue of one Lua value, for a response.
function M.encode_value(v)
  local ok, av = pcall(ddbjson.encode_value, v)
  if not ok then rethrow(av) end
  if av.L or av.M then fix_empty(av) end
  return av
end

-- ------------------------------------------------------------ keys

local KEY_TYPES = { S = true, N = true, B = true }

local function empty_key_value(v, t)
  if t == "S" then return v == "" end
  if t == "B" then return #types.binary_bytes(v) == 0 end
  return false
end

local function check_key_size(v, is_hash)
  local n = size.key(v)
  if is_hash and n > size.MAX_HASH_KEY then
    validation(INVALID .. "Size of hashkey has exceeded the maximum size limit of2048 bytes")
  end
  if not is_hash and n > size.MAX_RANGE_KEY then
    validation(INVALID
      .. "Aggregated size of all range keys has exceeded the size limit of 1024 bytes")
  end
end

M.check_key_size = check_key_size

--- The Lua key of a Key parameter, checked against key schema `keys`
-- ({hash = {name, type}, range = ...}): exactly the key attributes, of
-- the right types.
-- @tparam table keys the key schema (a catalog record's `keys`)
-- @tparam table t the Key's AttributeValue map
-- @treturn table the key
function M.key(keys, t)
  return M.check_key(keys, M.item(t))
end

--- Check a decoded key against key schema `keys` (as `key`).
-- @treturn table the key
local function check_key_part(key, k)
  local v = key[k.name]
  if v == nil or tp(v) ~= k.type then validation(MISMATCH) end
  if empty_key_value(v, k.type) then
    validation("One or more parameter values are not valid. The AttributeValue for a key "
      .. "attribute cannot contain an empty %s value. Key: %s",
      k.type == "S" and "string" or "binary", k.name)
  end
end

function M.check_key(keys, key)
  local n = 0
  for _ in pairs(key) do n = n + 1 end
  local range = keys.range
  if n ~= (range and 2 or 1) then validation(MISMATCH) end
  check_key_part(key, keys.hash)
  if range then check_key_part(key, range) end
  check_key_size(key[keys.hash.name], true)
  if range then check_key_size(key[range.name], false) end
  return key
end

--- The key of an item (its key attributes only).
function M.key_of(rec, item)
  local k = rec.keys
  local key = { [k.hash.name] = item[k.hash.name] }
  if k.range then key[k.range.name] = item[k.range.name] end
  return key
end

--- Check an item to be written against a table record: the table's key
-- attributes present, typed and sized; the index key attributes typed;
-- DynamoDB's size limit.  (Item values were checked when decoded.)
-- @tparam table rec the table's catalog record
-- @tparam table item the Lua item
-- @tparam[opt] boolean from_update the item was made by an update (the
--   messages differ)
function M.check_item(rec, item, from_update)
  for _, k in pairs { rec.keys.hash, rec.keys.range } do
    local v = item[k.name]
    if v == nil then
      validation(INVALID .. "Missing the key %s in the item", k.name)
    end
    local t = tp(v)
    if t ~= k.type then
      validation(INVALID .. "Type mismatch for key %s expected: %s actual: %s", k.name, k.type, t)
    end
    if empty_key_value(v, k.type) then
      validation("One or more parameter values are not valid. The AttributeValue for a key "
        .. "attribute cannot contain an empty %s value. Key: %s",
        k.type == "S" and "string" or "binary", k.name)
    end
  end
  check_key_size(item[rec.keys.hash.name], true)
  if rec.keys.range then check_key_size(item[rec.keys.range.name], false) end
  M.check_index_keys(rec, item, from_update)
  if size.item(item) > size.MAX_ITEM then
    if from_update then
      validation("Item size to update has exceeded the maximum allowed size")
    end
    validation("Item size has exceeded the maximum allowed size")
  end
end

-- DynamoDB's words for an update that would empty an index key.
local UPDATE_INDEX_KEY = "The update expression attempted to update a secondary index key to a "
  .. "value that is not supported."
M.UPDATE_INDEX_KEY = UPDATE_INDEX_KEY

-- A table's indexes in name order (DynamoDB names the first one that
-- refuses a value), kept per catalog record.
local index_order = setmetatable({}, { __mode = "k" })

local function indexes_by_name(rec)
  local list = index_order[rec]
  if list then return list end
  list = {}
  for _, set in pairs { rec.gsi, rec.lsi } do
    for name, ix in pairs(set) do list[#list + 1] = { name = name, ix = ix } end
  end
  table.sort(list, function(a, b) return a.name < b.name end)
  index_order[rec] = list
  return list
end
M.indexes_by_name = indexes_by_name

--- Check the index key attributes of an item: each present one must have
-- its index's type, not be empty and fit DynamoDB's key sizes (2048 bytes
-- for a partition key, 1024 for a sort key).  Indexes are checked in name
-- order.
-- @tparam[opt] boolean from_update the item was made by an update
function M.check_index_keys(rec, item, from_update)
  if not rec.gsi and not rec.lsi then return end
  for _, e in ipairs(indexes_by_name(rec)) do
    local name, ix = e.name, e.ix
    for _, k in pairs { ix.keys.hash, ix.keys.range } do
      local v = item[k.name]
      if v ~= nil then
        local t = tp(v)
        if t ~= k.type then
          validation(INVALID
            .. "Type mismatch for Index Key %s Expected: %s Actual: %s IndexName: %s",
            k.name, k.type, t, name)
        end
        if empty_key_value(v, k.type) then
          local what = k.type == "S" and "string" or "binary"
          if from_update then
            validation("One or more parameter values are not valid. %s The AttributeValue for a "
              .. "key attribute cannot contain an empty %s value.", UPDATE_INDEX_KEY, what)
          end
          validation("One or more parameter values are not valid. A value specified for a "
            .. "secondary index key is not supported. The AttributeValue for a key attribute "
            .. "cannot contain an empty %s value. IndexName: %s, IndexKey: %s",
            what, name, k.name)
        end
        if t ~= "N" then
          local n = size.key(v)
          local max = k == ix.keys.hash and size.MAX_HASH_KEY or size.MAX_RANGE_KEY
          if n > max then
            validation(INVALID .. "Size limit exceeded for Index Key %s Actual Size: %d bytes "
              .. "Max Size: %d bytes IndexName: %s", k.name, n, max, name)
          end
        end
      end
    end
  end
end

M.KEY_TYPES = KEY_TYPES
M.MISMATCH = MISMATCH

return M
