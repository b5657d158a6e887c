--- dynafile.serve.transact: TransactWriteItems and TransactGetItems.
--
-- A transaction on one table is one dynafile transaction: every condition
-- is checked and every write made inside one LMDB write transaction, so it
-- is atomic across workers and crashes by itself.
--
-- A transaction on several tables holds the write transactions of all of
-- them at once (taken in table-name order, so two workers never wait for
-- each other), checks every condition, and then, before any table
-- commits, writes an *intent* to the catalog: the final image of every
-- item it changes, and the image each had before.  The tables then commit
-- one after the other and the intent is removed.  A crash in between
-- leaves the intent; `recover` (the nginx master at start, and any worker
-- that finds the intent of a worker that died) finishes it: an item still
-- holding its image from before the transaction gets its final image, an
-- item holding the final image or anything else (a later write) is left
-- as it is.  The one case this cannot tell apart is a later write that put
-- back exactly the image from before the transaction, in the instant
-- between the dead worker's commits and the recovery.
--
-- ClientRequestToken: a transaction with a token also goes through an
-- intent (so the token is tied to the transaction durably), which becomes
-- a token record kept for ten minutes: the same token with the same
-- request is answered without running it again, with another request it
-- is IdempotentParameterMismatchException.
--
-- TransactGetItems reads each table in one snapshot; across tables it
-- retries until no multi-table transaction committed while it read.
--
-- Invariant: a cancelled transaction (a failed condition) writes nothing.
-- @module dynafile.serve.transact

local dynafile = require "dynafile"
local errors = require "dynafile.serve.errors"
local catalog = require "dynafile.serve.catalog"
local values = require "dynafile.serve.values"
local size = require "dynafile.serve.size"
local capacity = require "dynafile.serve.capacity"
local expressions = require "dynafile.serve.expressions"
local tables = require "dynafile.serve.tables"
local legacy = require "dynafile.serve.legacy"
local batch = require "dynafile.serve.batch"
local items = require "dynafile.serve.items"
local json = require "dynafile.serve.json"

local ngx = ngx -- luacheck: globals ngx
local pairs, ipairs, tostring, error, pcall, setmetatable, getmetatable =
  pairs, ipairs, tostring, error, pcall, setmetatable, getmetatable
local table_sort, table_concat = table.sort, table.concat

local M = {}

local validation = errors.validation
local TOKEN_SECONDS = 600

local state = { shm = nil }

local function now()
  return ngx and ngx.now() or os.time()
end

local function sys() return require "dynafile.serve.sys" end

function M.init_worker(_, shm)
  state.shm = shm
  -- worker 0 looks for intents left by workers that died, every second
  if ngx and ngx.worker.id() == 0 then
    ngx.timer.every(1, function(premature)
      if premature then return end
      local ok, err = pcall(M.recover_dead)
      if not ok then ngx.log(ngx.ERR, "dynafile serve: transaction recovery: ", tostring(err)) end
    end)
  end
end

-- ------------------------------------------------------------ request hashing

-- A canonical text of a value (for comparing requests under one token).
local function canonical(v)
  local t = type(v)
  if t == "table" then
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = tostring(k) end
    table_sort(keys)
    local parts = {}
    for i, k in ipairs(keys) do
      local x = v[k]
      if x == nil then x = v[tonumber(k)] end
      parts[i] = k .. "=" .. canonical(x)
    end
    return "{" .. table_concat(parts, ",") .. "}"
  end
  return t:sub(1, 1) .. tostring(v)
end

-- ------------------------------------------------------------ intents

local Cancel = {}
Cancel.__index = Cancel

local function cancel(reasons)
  error(setmetatable({ reasons = reasons }, Cancel), 0)
end

local function shm_incr(key)
  if state.shm then state.shm:incr(key, 1, 0) end
end

local function intent_key(id)
  return { kind = "intent", name = id }
end

-- Apply one recorded action to a table transaction if the item still
-- holds its image from before the transaction.
local function replay_action(tx, a)
  local cur = tx:get_item(a.key)
  if legacy.equal(cur or dynafile.null, a.before or dynafile.null)
      or (cur == nil and a.before == nil) then
    if a.after then tx:put_item(a.after) else tx:delete_item(a.key) end
  end
end

-- Finish an intent: open its tables, replay, remove it (and keep its
-- token).
local function finish_intent(rec)
  local by_table = {}
  local names = {}
  for _, a in ipairs(rec.actions or {}) do
    if not by_table[a.table] then
      by_table[a.table] = {}
      names[#names + 1] = a.table
    end
    local l = by_table[a.table]
    l[#l + 1] = a
  end
  table_sort(names)
  for _, name in ipairs(names) do
    local ok = pcall(function()
      local _, db = catalog.table(name)
      local tok, msg, code = db:transaction(function(tx)
        for _, a in ipairs(by_table[name]) do replay_action(tx, a) end
        return true
      end)
      if not tok and code then error(msg, 0) end
    end)
    if not ok then
      -- a table deleted since: nothing to finish there
      local _ = ok
    end
  end
  local cdb = catalog.db()
  cdb:transaction(function(tx)
    tx:delete_item(intent_key(rec.name))
    if rec.token then
      tx:put_item({ kind = "token", name = rec.token, hash = rec.hash,
        expires = now() + TOKEN_SECONDS })
    end
    return true
  end)
end

--- Finish the intents of processes that are gone (all of them when
-- `all`: the master at start, with no worker running).
function M.recover_dead(all)
  local cdb = catalog.db()
  if not cdb then return end
  local pending = cdb:query_page("intent", { limit = 1000 })
  for _, rec in ipairs(pending or {}) do
    if all or not (rec.owner and sys().alive(rec.owner)) then
      finish_intent(rec)
    end
  end
end

--- In the nginx master at start (see dynafile.serve.init).
function M.recover(dir)
  local cdb, msg = dynafile.open(dir .. "/@serve/catalog", {
    pk = "kind", sk = "name", ttl = "expires", sync = "full" })
  if not cdb then return nil, msg end
  local st = catalog.state
  local saved = { st.dir, st.db }
  st.dir, st.db = dir, cdb
  local ok, err = pcall(M.recover_dead, true)
  -- handles opened by the recovery belong to the master: close them all
  -- before the workers are forked
  for name in pairs(st.cache) do catalog.forget(name) end
  cdb:close()
  st.dir, st.db = saved[1], saved[2]
  if not ok then return nil, tostring(err) end
  return true
end

-- ------------------------------------------------------------ TransactWriteItems

local KINDS = { "ConditionCheck", "Put", "Delete", "Update" }
local OPS = { ConditionCheck = "TransactCheck", Put = "TransactPut", Delete = "TransactDelete",
  Update = "TransactUpdate" }

local function cancellation_message(reasons)
  local codes = {}
  for i, r in ipairs(reasons) do codes[i] = r.Code end
  return "Transaction cancelled, please refer cancellation reasons for specific reasons ["
    .. table_concat(codes, ", ") .. "]"
end

-- Decode and check every action; returns the plan list.
local MAX_TRANSACTION_BYTES = 4 * 1024 * 1024

local function plan_writes(req)
  local list = {}
  local total = 0 -- the items put, against DynamoDB's 4 MB per transaction
  for i, ti in ipairs(req.TransactItems) do
    local kind, part
    local n = 0
    for _, k in ipairs(KINDS) do
      if ti[k] then
        kind, part = k, ti[k]
        n = n + 1
      end
    end
    if n ~= 1 then
      validation("TransactItems can only contain one of Check, Put, Update or Delete")
    end
    local a = { kind = kind, part = part, index = i }
    if kind == "Put" then
      a.item = values.item(part.Item)
      local bytes = size.item(a.item)
      if bytes > size.MAX_ITEM then
        validation("Item size has exceeded the maximum allowed size")
      end
      total = total + bytes
      if total > MAX_TRANSACTION_BYTES then
        validation("Transaction request cannot be larger than 4 MB")
      end
    else
      a.key = values.item(part.Key)
    end
    a.plan = expressions.prepare(part, OPS[kind])
    list[i] = a
  end
  return list
end

-- Run a check of action i.  DynamoDB reports a key or index key of the
-- wrong type or shape as the action's cancellation reason (ValidationError),
-- not as a refusal of the whole request; such an error goes into
-- reasons[i] (and false is returned), any other is raised.
local function check_action(reasons, i, fn, ...)
  local ok, e = pcall(fn, ...)
  if ok then return true end
  if errors.is(e) and e.name == "ValidationException" and (e.message == values.MISMATCH
      or e.message:find("Type mismatch for ", 1, true)) then
    reasons[i] = { Code = "ValidationError", Message = e.message }
    return false
  end
  error(e, 0)
end

-- Raise TransactionCanceledException when check_action found reasons.
local function cancel_if_refused(reasons, n)
  if next(reasons) == nil then return end
  local all = {}
  for i = 1, n do all[i] = reasons[i] or { Code = "None" } end
  errors.raise("TransactionCanceledException", cancellation_message(all),
    { CancellationReasons = all })
end

local function run_writes(list, _, req)
  -- tables, keys, duplicates
  local targets, names = {}, {}
  local seen = {}
  local refused = {}
  for i, a in ipairs(list) do
    local name = tables.table_name(a.part.TableName)
    a.table = name
    if not targets[name] then
      local rec, db = catalog.table(name)
      targets[name] = { rec = rec, db = db }
      names[#names + 1] = name
    end
    local rec = targets[name].rec
    local ok
    if a.item then
      ok = check_action(refused, i, values.check_item, rec, a.item)
      a.key = values.key_of(rec, a.item)
    else
      ok = check_action(refused, i, values.check_key, rec.keys, a.key)
    end
    if a.plan.check_update then a.plan.check_update(rec) end
    items.check_targets(rec, a.plan)
    if ok then
      local id = name .. "\0" .. batch.key_id(rec, a.key)
      if seen[id] then validation("Transaction request cannot include multiple operations on one "
        .. "item") end
      seen[id] = true
    end
  end
  cancel_if_refused(refused, #list)
  table_sort(names)
  local token = req.ClientRequestToken
  local hash = token and canonical(req.TransactItems)
  local cdb = catalog.db()
  if token then
    local t = cdb:get_item({ kind = "token", name = token })
    if t then
      if t.hash ~= hash then
        errors.raise("IdempotentParameterMismatchException",
          "Specified idempotent token was used with different request parameters within the "
            .. "idempotency window")
      end
      return true, targets
    end
    local pending = cdb:query_page("intent", { limit = 1000 }) or {}
    for _, p in ipairs(pending) do
      if p.token == token then
        errors.raise("TransactionInProgressException",
          "The transaction with the given request token is already in progress")
      end
    end
  end
  local need_intent = #names > 1 or token ~= nil
  local txs = {}
  local reasons, any_failed = {}, false
  local results = {}

  -- the body, inside every table's write transaction
  local function body()
    for i, a in ipairs(list) do
      local tx = txs[a.table]
      local rec = targets[a.table].rec
      local old = tx:get_item(a.key)
      a.old = old
      local reason = { Code = "None" }
      local ok = true
      if a.plan.condition and not a.plan.condition(old) then ok = false end
      if ok and a.kind == "Update" then
        local upd_ok, new = pcall(items.apply_update, tx, rec, a.key, a.plan, old)
        if not upd_ok then
          if not errors.is(new) then new = errors.from_raise(new) or new end
          if errors.is(new) and new.name == "ValidationException"
              and not new.message:find(values.UPDATE_INDEX_KEY, 1, true) then
            reason = { Code = "ValidationError", Message = new.message }
            any_failed = true
          else
            error(new, 0)
          end
        else
          a.new = new
        end
      elseif ok and a.kind == "Put" then
        a.new = a.item
      end
      if not ok then
        reason = { Code = "ConditionalCheckFailed", Message = "The conditional request failed" }
        if a.part.ReturnValuesOnConditionCheckFailure == "ALL_OLD" and old then
          reason.Item = values.encode_item(old)
        end
        any_failed = true
      end
      reasons[i] = reason
    end
    if any_failed then cancel(reasons) end
    local actions = {}
    for _, a in ipairs(list) do
      if a.kind ~= "ConditionCheck" then
        local tx = txs[a.table]
        if a.kind == "Delete" then
          if a.old then tx:delete_item(a.key) end
        elseif a.kind == "Put" then
          tx:put_item(a.new)
        end -- an Update was written by apply_update
        actions[#actions + 1] = { table = a.table, key = a.key, before = a.old,
          after = a.kind ~= "Delete" and a.new or nil }
      end
      results[#results + 1] = a
    end
    if need_intent then
      local id = catalog.random_id(12)
      local ok, msg, code = cdb:put_item({ kind = "intent", name = id, owner = sys().getpid(),
        token = token, hash = hash, actions = actions, created = now() })
      if not ok then
        errors.engine("the transaction log cannot be written", msg, code)
      end
      return id
    end
    return true
  end

  local function nest(i)
    if i > #names then return body() end
    local name = names[i]
    local r1, r2, r3 = targets[name].db:transaction(function(tx)
      txs[name] = tx
      return nest(i + 1)
    end)
    if r1 == nil and r3 then
      errors.engine("table " .. name .. " cannot be written", r2, r3)
    end
    return r1
  end

  if need_intent then shm_incr("mtx") end
  local ok, res = pcall(nest, 1)
  if need_intent then shm_incr("mtx") end
  if not ok then
    if getmetatable(res) == Cancel then
      errors.raise("TransactionCanceledException", cancellation_message(res.reasons),
        { CancellationReasons = res.reasons })
    end
    error(res, 0)
  end
  if need_intent and res ~= true then
    -- every table committed: the intent becomes the token (or goes)
    cdb:transaction(function(tx)
      tx:delete_item(intent_key(res))
      if token then
        tx:put_item({ kind = "token", name = token, hash = hash, expires = now() + TOKEN_SECONDS })
      end
      return true
    end)
  end
  return results, targets
end

local function transact_write(req, ctx)
  local list = plan_writes(req)
  local results, targets = run_writes(list, ctx, req)
  local res = {}
  local u = capacity.usage(req.ReturnConsumedCapacity, true)
  if u and type(results) == "table" then
    for _, a in ipairs(results) do
      local s1 = a.old and size.item(a.old) or 0
      local s2 = a.new and size.item(a.new) or 0
      capacity.add(u, a.table, "write", 2 * capacity.write_units(s1 > s2 and s1 or s2))
    end
  elseif u then
    -- a replay under the same ClientRequestToken: DynamoDB charges it as a
    -- transactional read of each item, not a write
    for _, a in ipairs(list) do
      local item = targets[a.table].db:get_item(a.key)
      capacity.add(u, a.table, "read", 2 * capacity.read_units(item and size.item(item) or 0, true))
    end
  end
  if u then res.ConsumedCapacity = capacity.report_list(u) end
  if req.ReturnItemCollectionMetrics == "SIZE" and type(results) == "table" then
    local m = {}
    for _, a in ipairs(results) do
      local t = targets[a.table]
      local x = capacity.collection_metrics(t.rec, t.db, a.key, "SIZE")
      if x then
        m[a.table] = m[a.table] or {}
        m[a.table][#m[a.table] + 1] = x
      end
    end
    res.ItemCollectionMetrics = m
  end
  return res
end

-- ------------------------------------------------------------ TransactGetItems

local function transact_get(req, _)
  local list = {}
  for i, ti in ipairs(req.TransactItems) do
    local g = ti.Get
    list[i] = { key = values.item(g.Key), plan = expressions.prepare(g, "TransactGet"),
      part = g }
  end
  local targets, names = {}, {}
  local seen, refused = {}, {}
  for i, a in ipairs(list) do
    local name = tables.table_name(a.part.TableName)
    a.table = name
    if not targets[name] then
      local rec, db = catalog.table(name)
      targets[name] = { rec = rec, db = db, keys = {}, slots = {} }
      names[#names + 1] = name
    end
    local t = targets[name]
    if check_action(refused, i, values.check_key, t.rec.keys, a.key) then
      local id = name .. "\0" .. batch.key_id(t.rec, a.key)
      if seen[id] then validation("Transaction request cannot include multiple operations on one "
        .. "item") end
      seen[id] = true
    end
    t.keys[#t.keys + 1] = a.key
    t.slots[#t.slots + 1] = a
  end
  cancel_if_refused(refused, #list)
  local shm = state.shm
  for _ = 1, 100 do
    local v1 = shm and shm:get("mtx") or 0
    if v1 % 2 == 0 then
      for _, name in ipairs(names) do
        local t = targets[name]
        local got, msg, code = t.db:batch_get_item(t.keys)
        if not got then
          errors.engine("the table cannot be read", msg, code)
        end
        for i, a in ipairs(t.slots) do a.item = got[i] or nil end
      end
      local v2 = shm and shm:get("mtx") or 0
      if v1 == v2 or #names == 1 then break end
    end
    if ngx then ngx.sleep(0.001) end
  end
  local responses = {}
  local u = capacity.usage(req.ReturnConsumedCapacity, true)
  for i, a in ipairs(list) do
    local item = a.item
    if item then
      capacity.add(u, a.table, "read", 2 * capacity.read_units(size.item(item), true))
      if a.plan.project then item = a.plan.project(item) end
      responses[i] = { Item = values.encode_item(item) }
    else
      capacity.add(u, a.table, "read", 2)
      responses[i] = {}
    end
  end
  local res = { Responses = json.list(responses) }
  if u then res.ConsumedCapacity = capacity.report_list(u) end
  return res
end

M.run_writes = run_writes
M.plan_writes = plan_writes
M.cancellation_message = cancellation_message

function M.register(ops)
  ops.DynamoDB.TransactWriteItems = transact_write
  ops.DynamoDB.TransactGetItems = transact_get
end

return M
