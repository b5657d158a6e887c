--- dynafile.serve.items: GetItem, PutItem, DeleteItem and UpdateItem.
--
-- Each operation checks its request (values, ReturnValues, expression or
-- legacy parameters: expressions.lua) before it looks the table up, then
-- checks keys and items against the table (values.lua), then makes one
-- dynafile call: a condition is a Lua function over the current item,
-- evaluated inside the write transaction, so check and write are atomic
-- across all workers.  Updates run inside the transaction too, and the
-- new item is checked (key types, index key types, 400 KB) before it is
-- written.
--
-- Invariant: a request that fails -- validation, a failed condition -- has
-- written nothing.
-- @module dynafile.serve.items

local errors = require "dynafile.serve.errors"
local catalog = require "dynafile.serve.catalog"
local values = require "dynafile.serve.values"
local size = require "dynafile.serve.size"
local capacity = require "dynafile.serve.capacity"
local expressions = require "dynafile.serve.expressions"
local tables = require "dynafile.serve.tables"
local itemjson = require "dynafile.serve.itemjson"
local json = require "dynafile.serve.json"
local group = require "dynafile.serve.group"

local pairs, ipairs, tostring, pcall, error = pairs, ipairs, tostring, pcall, error
local setmetatable, getmetatable = setmetatable, getmetatable
local table_concat = table.concat

local M = {}

local validation = errors.validation

local internal = errors.engine

--- Raise ConditionalCheckFailedException, with the item when the request
-- asked for it (ReturnValuesOnConditionCheckFailure = ALL_OLD).
function M.condition_failed(req, old)
  local extra
  if req.ReturnValuesOnConditionCheckFailure == "ALL_OLD" and old then
    extra = { Item = values.encode_item(old) }
  end
  errors.raise("ConditionalCheckFailedException", "The conditional request failed", extra)
end

-- The attributes of `item` named in `names` (UPDATED_OLD / UPDATED_NEW).
local function only(item, names)
  if not item then return nil end
  local out, any = {}, false
  for _, n in ipairs(names) do
    local top = n:match("^([^.%[]+)") or n
    if item[top] ~= nil then
      out[top] = item[top]
      any = true
    end
  end
  return any and out or nil
end

-- ------------------------------------------------------------ GetItem

local function get_item(req, ctx)
  local name = tables.table_name(req.TableName)
  local key = values.item(req.Key)
  local p = expressions.prepare(req, "GetItem")
  local rec, db = catalog.table(name)
  values.check_key(rec.keys, key)
  local item, text, text_bytes
  if not p.project and not ctx.internal then
    -- the item's text written by C from its stored bytes, with its size
    -- (or, when a value needs the Lua path, the item as a table)
    local got, bytes_or_msg, code = db:_get_item_json(key)
    if got == nil then internal("GetItem", bytes_or_msg, code) end
    if bytes_or_msg then
      text, text_bytes = got, bytes_or_msg
    elseif got then
      item = got
    end
  else
    local msg, code
    item, msg, code = db:get_item(key)
    if item == nil and code then internal("GetItem", msg, code) end
  end
  local full = item
  if item and p.project then item = p.project(item) end
  local cap
  local u = capacity.usage(req.ReturnConsumedCapacity)
  if u then
    local bytes = text_bytes or full and size.item(full) or 0
    capacity.add(u, name, "read", capacity.read_units(bytes, req.ConsistentRead))
    cap = capacity.report(u, name)
  end
  if not ctx.internal then
    -- the answer as text, written straight from the item
    local buf, n = { "{" }, 1
    if text then
      buf[2] = '"Item":'
      buf[3] = text
      n = 3
    elseif item then
      buf[2] = '"Item":'
      n = itemjson.put_item(item, buf, 2)
    end
    if cap then
      buf[n + 1] = n > 1 and ',"ConsumedCapacity":' or '"ConsumedCapacity":'
      buf[n + 2] = json.encode(cap)
      n = n + 2
    end
    buf[n + 1] = "}"
    return table_concat(buf, "", 1, n + 1)
  end
  local res = {}
  if item then res.Item = values.encode_item(item) end
  res.ConsumedCapacity = cap
  return res
end

-- ------------------------------------------------------------ writes

-- Fill the response's ConsumedCapacity and ItemCollectionMetrics.
local function write_report(res, req, rec, db, name, old, new, key)
  local u = capacity.usage(req.ReturnConsumedCapacity)
  if u then
    local a = old and size.item(old) or 0
    local b = new and size.item(new) or 0
    local units = capacity.write_units(a > b and a or b)
    capacity.add(u, name, "write", units,
      capacity.index_writes(rec, old, new))
    res.ConsumedCapacity = capacity.report(u, name)
  end
  local m = capacity.collection_metrics(rec, db, key, req.ReturnItemCollectionMetrics)
  if m then res.ItemCollectionMetrics = m end
end

local function put_item(req, _)
  local name = tables.table_name(req.TableName)
  local rv = req.ReturnValues or "NONE"
  if rv ~= "NONE"
    and rv ~= "ALL_OLD" then validation("ReturnValues can only be ALL_OLD or NONE") end
  local item = values.item(req.Item)
  if size.item(item) > size.MAX_ITEM then validation("Item size has exceeded the maximum "
    .. "allowed size") end
  local p = expressions.prepare(req, "PutItem")
  local rec, db = catalog.table(name)
  values.check_item(rec, item)
  local report = req.ReturnConsumedCapacity == "TOTAL" or req.ReturnConsumedCapacity == "INDEXES"
  local want_old = rv == "ALL_OLD" or report
  local ok, old, code
  if not p.condition and not want_old then
    local msg
    ok, msg, code = group.put(name, db, item)
    if not ok then internal("PutItem", msg, code) end
  else
    local cond, seen
    if p.condition then
      local c = p.condition
      cond = function(o)
        seen = o
        return c(o)
      end
    end
    ok, old, code = db:put_item(item, { condition = cond, return_old = want_old })
    if not ok and code == "ConditionalCheckFailed" then M.condition_failed(req, seen) end
  end
  if not ok then internal("PutItem", old, code) end
  local res = {}
  if rv == "ALL_OLD" and old then res.Attributes = values.encode_item(old) end
  if report or req.ReturnItemCollectionMetrics == "SIZE" then
    write_report(res, req, rec, db, name, old, item, item)
  end
  return res
end

local function delete_item(req, _)
  local name = tables.table_name(req.TableName)
  local rv = req.ReturnValues or "NONE"
  if rv ~= "NONE"
    and rv ~= "ALL_OLD" then validation("ReturnValues can only be ALL_OLD or NONE") end
  local key = values.item(req.Key)
  local p = expressions.prepare(req, "DeleteItem")
  local rec, db = catalog.table(name)
  values.check_key(rec.keys, key)
  local report = req.ReturnConsumedCapacity == "TOTAL" or req.ReturnConsumedCapacity == "INDEXES"
  local want_old = rv == "ALL_OLD" or report
  local cond, seen
  if p.condition then
    local c = p.condition
    cond = function(o)
      seen = o
      return c(o)
    end
  end
  local ok, old, code = db:delete_item(key, { condition = cond, return_old = want_old })
  if not ok then
    if code == "ConditionalCheckFailed" then M.condition_failed(req, seen) end
    internal("DeleteItem", old, code)
  end
  local res = {}
  if rv == "ALL_OLD" and old then res.Attributes = values.encode_item(old) end
  if report or req.ReturnItemCollectionMetrics == "SIZE" then
    write_report(res, req, rec, db, name, old, nil, key)
  end
  return res
end

-- A failed condition inside a transaction function: carries the item.
local CondFailed = {}

--- Strip the "dynafile.update_item: " prefix from a message of the update
-- engine (the rest is DynamoDB's wording).
local function engine_message(msg)
  return (tostring(msg):gsub("^dynafile[%w_.]*: ", ""))
end
M.engine_message = engine_message

-- The engine refuses a value of a non-key type for an index key without
-- knowing the type the table declares for it; DynamoDB's message names
-- that type, and the first index (by name) keyed on the attribute.
local function index_type_message(rec, msg)
  local attr, actual = tostring(msg):match("Type mismatch for Index Key (.-) Expected: S, N or B "
    .. "Actual: (%u+) IndexName: ")
  if not attr then return nil end
  for _, e in ipairs(values.indexes_by_name(rec)) do
    for _, k in pairs { e.ix.keys.hash, e.ix.keys.range } do
      if k.name == attr then
        return string.format("One or more parameter values were invalid: Type mismatch for Index "
          .. "Key %s Expected: %s Actual: %s IndexName: %s", attr, k.type, actual, e.name)
      end
    end
  end
  return nil
end

--- Apply a request's update to the item under `key` inside write
-- transaction `tx`: the UpdateExpression (the C engine, on the stored
-- bytes), the legacy AttributeUpdates, or nothing (the item is made from
-- its key).  The new item is checked (key, index key types, 400 KB);
-- failures raise DynamoDB's errors, so the caller's transaction rolls
-- back.
-- @treturn table the new item
function M.apply_update(tx, rec, key, p, old)
  local new
  if p.update_expr then
    local ok, msg, code
    ok, new, msg, code = pcall(tx.update_item, tx, key, p.update_expr)
    if not ok then -- the engine raises when it cannot index or hold the new item
      local m = index_type_message(rec, new)
      if m then validation("%s", m) end
      local size_error = errors.item_size(new, true)
      if size_error then error(size_error, 0) end
      error(new, 0)
    end
    if new == nil then
      local size_error = errors.item_size(msg, true)
      if size_error then error(size_error, 0) end
      if code == "ValidationError" then
        validation("%s", index_type_message(rec, msg) or engine_message(msg))
      end
      internal("UpdateItem", msg, code)
    end
  else
    if p.update then
      new = p.update(old, key, rec)
    else
      new = {}
      if old then for k, v in pairs(old) do new[k] = v end end
      for k, v in pairs(key) do new[k] = v end
    end
    local ok, msg, code = tx:put_item(new)
    if not ok then
      local size_error = errors.item_size(msg, true)
      if size_error then error(size_error, 0) end
      internal("UpdateItem", msg, code)
    end
  end
  values.check_item(rec, new, true)
  return new
end

-- The top-level attributes an update names (ReturnValues UPDATED_*).
local function targets_of(p, req)
  if p.targets then return p.targets end
  local out = {}
  for k in pairs(req.AttributeUpdates or {}) do out[#out + 1] = k end
  return out
end

--- Refuse an update of a key attribute, before anything is read (as
-- DynamoDB does).
function M.check_targets(rec, p)
  for _, t in ipairs(p.targets or {}) do
    for _, k in pairs { rec.keys.hash, rec.keys.range } do
      if t == k.name then
        validation("One or more parameter values were invalid: Cannot update attribute %s. "
          .. "This attribute is part of the key", t)
      end
    end
  end
end

-- DynamoDB's UpdateItem weighs what its statement writes against the 400
-- KB limit, not the whole item: the attributes it names, as the finished
-- item holds them, plus its actions' weight (expressions.update_targets);
-- the key and the attributes it leaves alone do not count.  (Measured
-- against DynamoDB.  The finished item must fit 400 KB as well; PartiQL
-- and transactions weigh only the finished item.)
local function check_update_weight(p, new)
  if not p.update_weight or not new then return end
  local written = p.update_weight
  for _, t in ipairs(p.targets or {}) do
    local v = new[t]
    if v ~= nil then written = written + #t + size.value(v) end
  end
  if written > size.MAX_ITEM then
    validation("Item size to update has exceeded the maximum allowed size")
  end
end

local function update_item(req, ctx)
  local name = tables.table_name(req.TableName)
  local rv = req.ReturnValues or "NONE"
  local key = values.item(req.Key)
  local p = expressions.prepare(req, "UpdateItem")
  local rec, db = catalog.table(name)
  values.check_key(rec.keys, key)
  if p.check_update then p.check_update(rec) end
  M.check_targets(rec, p)
  local ok, new, old = pcall(db.transaction, db, function(tx)
    local o = tx:get_item(key)
    if p.condition and not p.condition(o) then error(setmetatable({ old = o }, CondFailed), 0) end
    local n = M.apply_update(tx, rec, key, p, o)
    if not (ctx and ctx.partiql) then check_update_weight(p, n) end
    return n, o
  end)
  if not ok then
    if getmetatable(new) == CondFailed then M.condition_failed(req, new.old) end
    error(errors.item_size(new, true) or new, 0)
  end
  if new == nil then internal("UpdateItem", old, "Error") end
  local res = {}
  local out
  if rv == "ALL_OLD" then
    out = old
  elseif rv == "ALL_NEW" then
    out = new
  elseif rv == "UPDATED_OLD" then
    out = only(old, targets_of(p, req))
  elseif rv == "UPDATED_NEW" then
    out = only(new, targets_of(p, req))
  end
  if out then res.Attributes = values.encode_item(out) end
  if req.ReturnConsumedCapacity or req.ReturnItemCollectionMetrics then
    write_report(res, req, rec, db, name, old, new, key)
  end
  return res
end

M.put_item = put_item

function M.register(ops)
  local D = ops.DynamoDB
  D.GetItem = get_item
  D.PutItem = put_item
  D.DeleteItem = delete_item
  D.UpdateItem = update_item
end

return M
