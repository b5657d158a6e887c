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
-- * an index: what a write changes in it -- nothing when the index's
--   stored entry stays the same (no arm at all), one write of the
--   projected item to add or remove an entry or change what it projects,
--   two (delete and insert) when the index key changes.  Index units are
--   part of the total under TOTAL too.
--
-- A `usage` accumulates units per table (and per index for INDEXES) over
-- a request; `report` gives the ConsumedCapacity value (one table) or
-- list (batches and transactions).  As DynamoDB does, only transactions
-- split units into ReadCapacityUnits and WriteCapacityUnits.
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
-- @tparam boolean split report read and write units apart (transactions)
function M.usage(mode, split)
  if mode ~= "TOTAL" and mode ~= "INDEXES" then return nil end
  return { mode = mode, tables = {}, order = {}, split = split }
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
-- is given (M.index_writes), the write units of each index written.
function M.add(u, name, kind, units, indexes)
  if not u then return end
  local t = table_entry(u, name)
  t[kind] = t[kind] + units
  if indexes then
    for ix, w in pairs(indexes) do
      local set = t[w.kind]
      local e = set[ix]
      if not e then
        e = { read = 0, write = 0 }
        set[ix] = e
      end
      e.write = e.write + w.units
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

local function units_json(e, split)
  local out = { CapacityUnits = e.read + e.write }
  if split then
    if e.read > 0 then out.ReadCapacityUnits = e.read end
    if e.write > 0 then out.WriteCapacityUnits = e.write end
  end
  return out
end

local function one(u, name)
  local t = u.tables[name]
  local split = u.split
  local total = { read = t.read + (t.index_read or 0), write = t.write }
  for _, set in ipairs { t.gsi, t.lsi } do
    for _, e in pairs(set) do
      if not t.index_read then total.write = total.write + e.write end
    end
  end
  local out = units_json(total, split)
  out.TableName = name
  if u.mode == "INDEXES" then
    out.Table = units_json({ read = t.read, write = t.write }, split)
    for key, set in pairs { GlobalSecondaryIndexes = t.gsi, LocalSecondaryIndexes = t.lsi } do
      local names = {}
      for ix in pairs(set) do names[#names + 1] = ix end
      if #names > 0 then
        table_sort(names)
        local m = {}
        for _, ix in ipairs(names) do m[ix] = units_json(set[ix], split) end
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

-- The attributes of `item` an index stores (nil when the item lacks one of
-- the index's key attributes), and the index's key values.
local function index_entry(rec, ix, item)
  if not item then return nil end
  local h, r = ix.keys.hash.name, ix.keys.range and ix.keys.range.name
  if item[h] == nil or (r and item[r] == nil) then return nil end
  local p = ix.projection
  if p.type == "ALL" then return item end
  local out = { [h] = item[h] }
  if r then out[r] = item[r] end
  local tk = rec.keys
  out[tk.hash.name] = item[tk.hash.name]
  if tk.range then out[tk.range.name] = item[tk.range.name] end
  if p.attrs then
    for _, a in ipairs(p.attrs) do out[a] = item[a] end
  end
  return out
end

-- The same value (DynamoDB equality, legacy.equal) under `name` in x and y,
-- or absent from both?
local function same_attr(equal, x, y, name)
  local a, b = x[name], y[name]
  if a == nil or b == nil then return a == b end
  return equal(a, b)
end

local function same_entry(equal, x, y)
  for k in pairs(x) do
    if not same_attr(equal, x, y, k) then return false end
  end
  for k in pairs(y) do
    if x[k] == nil then return false end
  end
  return true
end

--- The index writes of an item write, as DynamoDB charges them:
-- {name = {kind = "gsi"|"lsi", units = n}} for each index whose stored
-- entry changes (nil when none does).
function M.index_writes(rec, old, new)
  local out
  local equal, size
  for kind, set in pairs { gsi = rec.gsi, lsi = rec.lsi } do
    for name, ix in pairs(set or {}) do
      local a, b = index_entry(rec, ix, old), index_entry(rec, ix, new)
      if a or b then
        equal = equal or require("dynafile.serve.legacy").equal
        size = size or require "dynafile.serve.size"
        local units = 0
        if a and b then
          local h, r = ix.keys.hash.name, ix.keys.range and ix.keys.range.name
          if not same_attr(equal, a, b, h) or (r and not same_attr(equal, a, b, r)) then
            units = M.write_units(size.item(a)) + M.write_units(size.item(b))
          elseif not same_entry(equal, a, b) then
            local sa, sb = size.item(a), size.item(b)
            units = M.write_units(sa > sb and sa or sb)
          end
        else
          units = M.write_units(size.item(a or b))
        end
        if units > 0 then
          out = out or {}
          out[name] = { kind = kind, units = units }
        end
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
