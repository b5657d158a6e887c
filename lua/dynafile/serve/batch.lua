--- dynafile.serve.batch: BatchGetItem and BatchWriteItem.
--
-- BatchGetItem reads each table's keys in one consistent snapshot of that
-- table (db:batch_get_item) and answers with every item found; keys past
-- DynamoDB's 16 MB response limit come back in UnprocessedKeys.
-- BatchWriteItem writes each table's requests in one dynafile batch
-- transaction (all of them or none, which is stronger than DynamoDB's
-- per-item atomicity), so UnprocessedItems is always empty.
--
-- Invariant: the whole request is checked -- sizes, duplicates, every key
-- and item against its table -- before anything is read or written.
-- @module dynafile.serve.batch

local errors = require "dynafile.serve.errors"
local catalog = require "dynafile.serve.catalog"
local values = require "dynafile.serve.values"
local size = require "dynafile.serve.size"
local capacity = require "dynafile.serve.capacity"
local expressions = require "dynafile.serve.expressions"
local tables = require "dynafile.serve.tables"
local shape = require "dynafile.serve.shape"
local api = require "dynafile.serve.api"
local json = require "dynafile.serve.json"
local types = require "dynafile.types"

local pairs, ipairs, tostring = pairs, ipairs, tostring
local table_sort, table_concat = table.sort, table.concat

local M = {}

local validation = errors.validation
local tp = types.type

local MAX_RESPONSE = 16 * 1024 * 1024

-- A string identifying a key (for duplicate checks).
local function key_id(rec, key)
  local parts = {}
  for _, k in pairs { rec.keys.hash, rec.keys.range } do
    local v = key[k.name]
    local t = tp(v)
    local s
    if t == "N" then
      s = types.number_string(v)
    elseif t == "B" then
      s = types.binary_bytes(v)
    else
      s = tostring(v)
    end
    parts[#parts + 1] = (t or "?") .. ":" .. #s .. ":" .. s
  end
  return table_concat(parts, "|")
end
M.key_id = key_id

local function sorted_names(t)
  local names = {}
  for n in pairs(t) do names[#names + 1] = n end
  table_sort(names)
  return names
end

-- ------------------------------------------------------------ BatchGetItem

local function batch_get(req, _)
  local ri = req.RequestItems
  if next(ri) == nil then validation("The requestItems parameter is required for BatchGetItem") end
  local names = sorted_names(ri)
  local total = 0
  for _, t in ipairs(names) do
    local n = #ri[t].Keys
    if n > 100 then
      validation("1 validation error detected: Value at 'RequestItems.%s.member.Keys' failed to "
        .. "satisfy constraint: Member must have length less than or equal to 100", t)
    end
    total = total + n
  end
  if total > 100 then validation("Too many items requested for the BatchGetItem call") end
  -- expression or legacy projections, each table checked; mixing the two
  -- forms across tables is refused as within one
  local plans, forms = {}, {}
  for _, t in ipairs(names) do
    local entry = ri[t]
    plans[t] = expressions.prepare(entry, "BatchGet")
    if entry.ProjectionExpression then forms.expr = true end
    if entry.AttributesToGet then forms.legacy = true end
  end
  if forms.expr and forms.legacy then
    validation("Can not use both expression and non-expression parameters in the same request: "
      .. "Non-expression parameters: {AttributesToGet} Expression parameters: "
        .. "{ProjectionExpression}")
  end
  local decoded = {}
  for _, t in ipairs(names) do
    local keys = {}
    for i, k in ipairs(ri[t].Keys) do keys[i] = values.item(k) end
    decoded[t] = keys
  end
  local targets = {}
  for _, t in ipairs(names) do
    local name = tables.table_name(t, "requestItems")
    local rec, db = catalog.table(name)
    local seen = {}
    for _, key in ipairs(decoded[t]) do
      values.check_key(rec.keys, key)
      local id = key_id(rec, key)
      if seen[id] then validation("Provided list of item keys contains duplicates") end
      seen[id] = true
    end
    targets[t] = { name = name, rec = rec, db = db }
  end
  local u = capacity.usage(req.ReturnConsumedCapacity)
  local responses, unprocessed = {}, {}
  local bytes = 0
  for _, t in ipairs(names) do
    local target, keys, plan = targets[t], decoded[t], plans[t]
    local got, msg, code = target.db:batch_get_item(keys)
    if not got then
      errors.engine("the table cannot be read", msg, code)
    end
    local out, rest = {}, {}
    local consistent = ri[t].ConsistentRead
    for i, item in ipairs(got) do
      local isize = item and size.item(item) or 0
      if bytes + isize > MAX_RESPONSE and #out > 0 then
        rest[#rest + 1] = ri[t].Keys[i]
      else
        bytes = bytes + isize
        if item then
          out[#out + 1] = values.encode_item(plan.project and plan.project(item) or item)
        end
        capacity.add(u, target.name, "read", capacity.read_units(isize, consistent))
      end
    end
    responses[t] = json.list(out)
    if #rest > 0 then
      local entry = {}
      for k, v in pairs(ri[t]) do entry[k] = v end
      entry.Keys = rest
      unprocessed[t] = entry
    end
  end
  local res = { Responses = responses, UnprocessedKeys = unprocessed }
  if u then res.ConsumedCapacity = capacity.report_list(u) end
  return res
end

-- ------------------------------------------------------------ BatchWriteItem

local function batch_write(req, _)
  local ri = req.RequestItems
  if next(ri) == nil then validation("The requestItems parameter is required for "
    .. "BatchWriteItem") end
  local names = sorted_names(ri)
  local total = 0
  for _, t in ipairs(names) do
    local n = #ri[t]
    if n > 25 or n < 1 then
      local s = api.DynamoDB.BatchWriteItem.fields[1][2]
      validation("1 validation error detected: Value '%s' at 'requestItems' failed to satisfy "
        .. "constraint: Map value must satisfy constraint: [Member must have length less than or "
        .. "equal to 25, Member must have length greater than or equal to 1]", shape.render(ri, s))
    end
    total = total + n
  end
  if total > 25 then validation("Too many items requested for the BatchWriteItem call") end
  -- decode and check every request before any table is touched
  local plans = {}
  for _, t in ipairs(names) do
    local list = {}
    for i, wr in ipairs(ri[t]) do
      local put, del = wr.PutRequest, wr.DeleteRequest
      if (put and del) or (not put and not del) then
        validation("Supplied AttributeValue has more than one datatypes set, must contain exactly "
          .. "one of the supported datatypes")
      end
      if put then
        local item = values.item(put.Item)
        if size.item(item) > size.MAX_ITEM then
          validation("Item size has exceeded the maximum allowed size")
        end
        list[i] = { put = item }
      else
        list[i] = { delete = values.item(del.Key) }
      end
    end
    plans[t] = list
  end
  local targets = {}
  for _, t in ipairs(names) do
    local name = tables.table_name(t, "requestItems")
    local rec, db = catalog.table(name)
    local seen = {}
    for _, w in ipairs(plans[t]) do
      local key
      if w.put then
        -- a key of the wrong type is a schema mismatch here
        for _, k in pairs { rec.keys.hash, rec.keys.range } do
          local v = w.put[k.name]
          if v == nil then
            validation("One or more parameter values were invalid: Missing the key %s in the item",
              k.name)
          end
          if tp(v) ~= k.type then validation(values.MISMATCH) end
        end
        values.check_item(rec, w.put)
        key = values.key_of(rec, w.put)
      else
        key = values.check_key(rec.keys, w.delete)
      end
      local id = key_id(rec, key)
      if seen[id] then validation("Provided list of item keys contains duplicates") end
      seen[id] = true
      w.key = key
    end
    targets[t] = { name = name, rec = rec, db = db }
  end
  local u = capacity.usage(req.ReturnConsumedCapacity)
  local metrics = req.ReturnItemCollectionMetrics == "SIZE" and {} or nil
  for _, t in ipairs(names) do
    local target, list = targets[t], plans[t]
    local db, rec = target.db, target.rec
    local olds
    if u then
      local keys = {}
      for i, w in ipairs(list) do keys[i] = w.key end
      olds = db:batch_get_item(keys) or {}
    end
    local ok, msg, code = db:batch_write(function(w)
      for _, x in ipairs(list) do
        if x.put then w:put_item(x.put) else w:delete_item(x.delete) end
      end
    end)
    if not ok then
      errors.engine("the table cannot be written", msg, code)
    end
    if u then
      for i, x in ipairs(list) do
        local old = olds[i] or nil
        local a = old and size.item(old) or 0
        local b = x.put and size.item(x.put) or 0
        capacity.add(u, target.name, "write", capacity.write_units(a > b and a or b),
          capacity.index_writes(rec, old, x.put))
      end
    end
    if metrics and rec.lsi and next(rec.lsi) then
      local m = {}
      for _, x in ipairs(list) do
        m[#m + 1] = capacity.collection_metrics(rec, db, x.key, "SIZE")
      end
      metrics[t] = m
    end
  end
  local res = { UnprocessedItems = {} }
  if u then res.ConsumedCapacity = capacity.report_list(u) end
  if metrics then res.ItemCollectionMetrics = metrics end
  return res
end

function M.register(ops)
  ops.DynamoDB.BatchGetItem = batch_get
  ops.DynamoDB.BatchWriteItem = batch_write
end

return M
