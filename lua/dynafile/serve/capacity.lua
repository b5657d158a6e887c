--- dynafile.serve.capacity: ConsumedCapacity and ItemCollectionMetrics.
--
-- dynafile serve enforces no throughput, but reports the capacity units
-- DynamoDB would have charged, in DynamoDB's shapes, when a request asks
-- (ReturnConsumedCapacity TOTAL or INDEXES):
--
-- * a write: one unit per KB of the larger of the old and new item (at
--   least one), doubled in transactions;
-- * a read: one unit per 4 KB read, half for eventually consistent reads,
--   doubled in transactions; a query or scan rounds the sum of the sizes
--   of the items it read, not each item.
--
-- A `usage` accumulates units per table (and per index for INDEXES) over
-- a request; `report` gives the ConsumedCapacity value (one table) or
-- list (batches and transactions).
-- @module dynafile.serve.capacity

local json = require "dynafile.serve.json"

local pairs, ipairs = pairs, ipairs
local math_ceil = math.ceil
local table_sort = table.sort

local M = {}

--- Units of a write of `bytes` (at least one).
function M.write_units(bytes)
  local u = math_ceil(bytes / 1024)
  if u < 1 then u = 1 end
  return u
end

--- Units of a read of `bytes`: 4 KB blocks, at least one, halved when
-- eventually consistent.
function M.read_units(bytes, consistent)
  local u = math_ceil(bytes / 4096)
  if u < 1 then u = 1 end
  if not consistent then u = u / 2 end
  return u
end

--- A new accumulator for a request.
-- @tparam string mode the request's ReturnConsumedCapacity (nil: none)
function M.usage(mode)
  if mode ~= "TOTAL" and mode ~= "INDEXES" then return nil end
  return { mode = mode, tables = {}, order = {} }
end

local function table_entry(u, name)
  local t = u.tables[name]
  if not t then
    t = { read = 0, write = 0, gsi = {}, lsi = {} }
    u.tables[name] = t
    u.order[#u.order + 1] = name
  end
  return t
end

--- Add units for a table (kind "read" or "write"), and, when `indexes`
-- is given ({name = "gsi"|"lsi"}), the same units for each index written.
function M.add(u, name, kind, units, indexes)
  if not u then return end
  local t = table_entry(u, name)
  t[kind] = t[kind] + units
  if indexes then
    for ix, k in pairs(indexes) do
      local set = t[k]
      local e = set[ix]
      if not e then
        e = { read = 0, write = 0 }
        set[ix] = e
      end
      e[kind] = e[kind] + units
    end
  end
end

--- Add read units for an index query/scan (the index, not the table,
-- is charged).
function M.add_index_read(u, name, index, kind, units)
  if not u then return end
  local t = table_entry(u, name)
  local set = t[kind]
  local e = set[index]
  if not e then
    e = { read = 0, write = 0 }
    set[index] = e
  end
  e.read = e.read + units
  t.index_read = (t.index_read or 0) + units
end

local function units_json(e)
  local out = { CapacityUnits = e.read + e.write }
  if e.read > 0 then out.ReadCapacityUnits = e.read end
  if e.write > 0 then out.WriteCapacityUnits = e.write end
  return out
end

local function one(u, name)
  local t = u.tables[name]
  local total = { read = t.read + (t.index_read or 0), write = t.write }
  for _, set in ipairs { t.gsi, t.lsi } do
    for _, e in pairs(set) do
      if not t.index_read then total.write = total.write + e.write end
    end
  end
  local out = units_json(total)
  out.TableName = name
  if u.mode == "INDEXES" then
    out.Table = units_json({ read = t.read, write = t.write })
    for key, set in pairs { GlobalSecondaryIndexes = t.gsi, LocalSecondaryIndexes = t.lsi } do
      local names = {}
      for ix in pairs(set) do names[#names + 1] = ix end
      if #names > 0 then
        table_sort(names)
        local m = {}
        for _, ix in ipairs(names) do m[ix] = units_json(set[ix]) end
        out[key] = m
      end
    end
  end
  return out
end

--- The ConsumedCapacity of a single-table request (nil without usage).
function M.report(u, name)
  if not u then return nil end
  if not u.tables[name] then table_entry(u, name) end
  return one(u, name)
end

--- The ConsumedCapacity list of a multi-table request.
function M.report_list(u)
  if not u then return nil end
  local out = {}
  for i, name in ipairs(u.order) do out[i] = one(u, name) end
  return json.list(out)
end

--- The indexes an item write touches: {name = "gsi"|"lsi"} for each index
-- whose key attributes the old or new item holds.
function M.indexes_written(rec, old, new)
  local out
  for kind, set in pairs { gsi = rec.gsi, lsi = rec.lsi } do
    for name, ix in pairs(set or {}) do
      local h = ix.keys.hash.name
      local r = ix.keys.range and ix.keys.range.name
      local function has(item)
        return item and item[h] ~= nil and (not r or item[r] ~= nil)
      end
      if has(old) or has(new) then
        out = out or {}
        out[name] = kind
      end
    end
  end
  return out
end

--- ItemCollectionMetrics of a write to a table with local secondary
-- indexes (DynamoDB reports them only then): the item collection's key
-- and DynamoDB's size estimate range in GB.
function M.collection_metrics(rec, db, item_key, want)
  if want ~= "SIZE" or not rec.lsi or next(rec.lsi) == nil then return nil end
  local values = require "dynafile.serve.values"
  local size = require "dynafile.serve.size"
  local pk = rec.keys.hash.name
  local bytes = 0
  for it in db:query(item_key[pk]) do bytes = bytes + size.item(it) end
  local gb = bytes / (1024 * 1024 * 1024)
  return {
    ItemCollectionKey = { [pk] = values.encode_value(item_key[pk]) },
    SizeEstimateRangeGB = { gb, gb < 1 and 1 or gb },
  }
end

return M
