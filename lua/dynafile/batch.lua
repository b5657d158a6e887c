--- dynafile.batch: batch writers and transactions.
--
-- A batch writer queues puts and deletes (an item is encoded when it is
-- queued, so a bad item raises there and later changes to the table do
-- not matter) and applies them in one LMDB write transaction per flush,
-- however many partitions they touch, as if in the order given: a later
-- operation on a key wins over an earlier one.  Without a TTL function
-- (which must see each item as it goes) the whole flush is one call into
-- the core, which writes the keys in key order -- the order listeners
-- hear them in.
--
-- A transaction runs a Lua function with the write transaction held;
-- everything it does commits together or not at all.  Each action (put,
-- delete, update, condition check) adds one entry to the reasons list, in
-- order: `{code = "None"}` when it passed, `{code =
-- "ConditionalCheckFailed", message = ...}` when its condition failed,
-- `{code = "ValidationError", message = ...}` when its update did not fit
-- the item.  A failed action cancels the transaction, but the actions
-- after it still run (their conditions are checked, so the reasons tell
-- about every action, as DynamoDB's do); nothing is committed.
--
-- The database methods that return these (db:batch_writer, db:batch_write,
-- db:transaction, db:transact_write_items) are defined in dynafile.db and
-- call this module's functions.
--
-- Invariant: nothing reaches the database unless the whole batch or
-- transaction commits; listeners hear of it only after the commit.
-- @module dynafile.batch

local core = require "dynafile.core"
local errors = require "dynafile.errors"
local expr = require "dynafile.expr"
local handle = require "dynafile.handle"
local types = require "dynafile.types"
local update = require "dynafile.update"

local error, type, pairs, ipairs, pcall, select = error, type, pairs, ipairs, pcall, select
local setmetatable, tostring = setmetatable, tostring
-- The writer and transaction checks read the metatable raw: their classes
-- set no __metatable, and PUC Lua's getmetatable looks for one on every
-- call (LuaJIT's is a fast function its compiler records: kept there).
local getmetatable = rawget(_G, "jit") == nil and debug and debug.getmetatable
  or getmetatable
local string_format = string.format
-- The binding's methods a batch writer's put_item calls, without a method
-- lookup on the handle's userdata.
local c_check_key, c_encode = core.db_methods.check_key, core.db_methods.encode
local math_tointeger = math.tointeger -- nil before Lua 5.3
local unpack = table.unpack or unpack -- luacheck: ignore 143

local fail, failed, options = errors.fail, errors.failed, errors.options
local current, compile_condition = handle.current, handle.compile_condition
local condition_holds, key_of = handle.condition_holds, handle.key_of

local M = {}

-- --------------------------------------------------------- batch writer

--- A batch writer, from `db:batch_writer`: queues puts and deletes and
-- commits them, in order, in one transaction per flush.
-- @type batch_writer

local Writer = {}
Writer.__index = Writer
Writer.__name = "dynafile.batch_writer"

local function writer_check(w, fn)
  if getmetatable(w) ~= Writer then
    fail("batch_writer." .. fn, "expected a batch writer (use w:%s)", fn)
  end
  if w._closed then
    fail("batch_writer." .. fn, "the batch writer is closed")
  end
end

--- Queue a put.  The item is checked and encoded now: an invalid item (a
-- key attribute missing, of the wrong type or too long, a value that
-- cannot be stored) raises here, not at flush, and later changes to the
-- table do not matter.  Only an index value over the length limits is
-- found at flush, which then raises and writes nothing (`w:discard()`
-- drops the batch).
-- @tparam table item the item, holding the key attributes
-- @treturn true always
-- @raise on an invalid item (as for `db:put_item`) or a closed writer
function Writer:put_item(item)
  writer_check(self, "put_item")
  local fn = "batch_writer.put_item"
  local c = self._db._c
  if type(item) ~= "table" then fail(fn, "item must be a table, got %s", type(item)) end
  local ok, msg, code, misuse = c_check_key(c, item)
  if not ok then failed(fn, msg, code, misuse) end
  local bytes
  bytes, msg, code, misuse = c_encode(c, item)
  if not bytes then failed(fn, msg, code, misuse) end
  local n = self._n + 1
  self._ops[n] = bytes
  self._n = n
  return true
end

--- Queue a delete.  Deleting a missing item is not an error.
-- @tparam table key the key attributes
-- @treturn true always
-- @raise on an invalid key or a closed writer
function Writer:delete_item(key)
  writer_check(self, "delete_item")
  local db = self._db
  local ok, msg, code, misuse = db._c:check_key(key)
  if not ok then failed("batch_writer.delete_item", msg, code, misuse) end
  local n = self._n + 1
  self._ops[n] = key_of(db, key)
  self._n = n
  return true
end

local function flush_body(db, txn, t, ops, n)
  local fn = "batch_writer.flush"
  local ttl_fn = db._ttl_fn
  if not ttl_fn then
    -- no Lua code runs between the operations: all of them go to the core
    -- in one call, which writes them in key order
    local ok, msg, code, misuse = txn:write_batch(ops, n)
    if ok == nil then return failed(fn, msg, code, misuse) end
    return true
  end
  local decode = core.decode
  for i = 1, n do
    local op = ops[i]
    local ok, msg, code, misuse
    if ttl_fn then
      -- an item the TTL function finds expired is deleted as such first
      local _
      _, msg, code = current(db, fn, txn, type(op) == "string" and decode(op) or op, t)
      if msg then return nil, msg, code end
    end
    if type(op) == "string" then
      ok, msg, code, misuse = txn:put(op)
    else
      ok, msg, code, misuse = txn:delete(op)
    end
    if ok == nil then return failed(fn, msg, code, misuse) end
  end
  return true
end

--- Apply every queued operation in one transaction, as if in the order
-- given: a later operation on a key wins over an earlier one.  Listeners
-- hear one event per operation after the commit, in key order (in the
-- order given with a TTL function).  The writer stays open.
-- @treturn true|nil true on success
-- @treturn string message on failure (the operations stay queued)
-- @treturn string code on failure ("IOError", ...)
-- @raise on a closed writer, a closed or read-only database, a flush from
--   inside one of this database's own transactions (which would wait for
--   itself), a key or index value over the length limits
function Writer:flush()
  writer_check(self, "flush")
  local db = self._db
  handle.check_open(db, "batch_writer.flush")
  if self._n == 0 then return true end
  local ok, msg, code = handle.write(db, "batch_writer.flush", flush_body, self._ops, self._n)
  if not ok then return nil, msg, code end
  self._ops, self._n = {}, 0
  return true
end

--- Flush and close.  The writer is closed even when the flush fails or
-- raises.  Closing twice is fine.
-- @treturn true|nil true on success
-- @treturn string message on failure
-- @treturn string code on failure
-- @raise as flush does
function Writer:close()
  if getmetatable(self) ~= Writer then writer_check(self, "close") end
  if self._closed then return true end
  local ok, flushed, msg, code = pcall(self.flush, self)
  self._ops, self._n = {}, 0
  self._closed = true
  if not ok then error(flushed, 0) end
  if not flushed then return nil, msg, code end
  return true
end

--- Drop every queued operation and close.
-- @return nothing
-- @raise when called on something that is not a batch writer
function Writer:discard()
  if getmetatable(self) ~= Writer then writer_check(self, "discard") end
  self._ops, self._n = {}, 0
  self._closed = true
end

--- The number of queued operations.
-- @treturn integer how many puts and deletes wait for the next flush
-- @raise nothing
function Writer:pending()
  return self._n
end

-- `<close>` and collection without an end (dynafile.errors)
local watch_writer = errors.writer_class(Writer)

--- A new batch writer on the open handle `db` (DB:batch_writer).
-- @local
-- @param db an open database handle
-- @treturn batch_writer the writer
-- @raise nothing
function M.writer(db)
  return watch_writer(setmetatable({ _db = db, _ops = {}, _n = 0, _closed = false }, Writer))
end

--- Run fn(w) with a batch writer and commit what it queued in one
-- transaction (DB:batch_write).
-- @local
-- @param db an open database handle
-- @tparam function fn called as fn(w)
-- @return true, or nil, message, code
-- @raise as DB:batch_write
function M.batch_write(db, fn)
  if type(fn) ~= "function" then fail("batch_write", "argument must be a function") end
  local w = M.writer(db)
  local ok, err = pcall(fn, w)
  if not ok then
    w:discard()
    error(err, 0)
  end
  return w:close()
end

-- --------------------------------------------------------- transactions

--- The transaction object given to `db:transaction`'s function; valid only
-- until that function returns.
-- @type transaction

local function pack(...)
  return { n = select("#", ...), ... }
end

local Tx = {}
Tx.__index = Tx
Tx.__name = "dynafile.transaction"

-- The name of the function the user called for a method of tx: the method
-- of the transaction object, or the action of transact_write_items being
-- run.
-- "transaction.<method>", made once per method (not per call)
local TX_NAMES = setmetatable({}, { __index = function(t, method)
  local name = "transaction." .. method
  t[method] = name
  return name
end })

local function tx_fn(tx, method)
  return tx._action or TX_NAMES[method]
end

local function tx_check(tx, method)
  if getmetatable(tx) ~= Tx then
    fail("transaction." .. method, "expected the transaction object (use tx:%s)", method)
  end
  if not tx._txn then
    fail("transaction." .. method, "the transaction is over")
  end
end

-- Record the outcome of one action: passed, or failed (which cancels the
-- transaction and gives the action its results: nil, message, code).
-- Only failures are stored as they happen (`_reasons[i]`); `reasons_of`
-- fills in the passes when the reasons are returned.
local function passed(tx)
  tx._n = tx._n + 1
end

local function action_failed(tx, what, code, msg)
  local n = tx._n + 1
  tx._n = n
  tx._reasons[n] = { code = code, message = msg }
  if not tx._canceled then tx._canceled = { n = n, what = what } end
  return nil, msg, code
end

-- The reasons list of a canceled transaction: one per action, in order.
local function reasons_of(tx)
  local r = tx._reasons
  for i = 1, tx._n do
    if r[i] == nil then r[i] = { code = "None" } end
  end
  return r
end

-- The action's condition, compiled; nil when none; false, message when
-- a string does not parse (the whole transaction is then a
-- ValidationError).
local function tx_compile(tx, fn, cond)
  if cond == nil or tx._precompiled then return cond end
  local c, msg = compile_condition(fn, cond)
  if not c then
    tx._invalid = tx._invalid or msg
    return false, msg
  end
  return c
end

-- A write the core refused (the map must grow: "Retry"; an I/O error)
-- dooms the LMDB transaction: stop the function by raising; run_tx
-- then returns the failure (the runner runs it all again on "Retry").
-- Misuse is raised as such.
local broken_mt = { __tostring = function(b) return b.msg end }
local function broken(tx, fn, msg, code, misuse)
  failed(fn, msg, code, misuse)
  tx._broken = setmetatable({ msg = msg, code = code }, broken_mt)
  error(tx._broken, 0)
end

-- The current item under key, or the transaction broken.
local function tx_current(tx, fn, key)
  local old, msg, code = current(tx._db, fn, tx._txn, key, tx._now)
  if msg then broken(tx, fn, msg, code) end
  return old
end

-- Whether cond holds for old, or the transaction broken.
local function tx_holds(tx, fn, key, cond, old)
  local holds, msg, code = condition_holds(tx._db, fn, tx._txn, key, cond, old)
  if msg then broken(tx, fn, msg, code) end
  return holds
end

local TX_OPTS = { condition = true, return_old = true }

--- Read an item, seeing the transaction's own writes.
-- @tparam table key the key attributes
-- @treturn table|nil the item, or nil when missing or expired
-- @raise on an invalid key or a call after the transaction function
--   returned
function Tx:get_item(key)
  tx_check(self, "get_item")
  return tx_current(self, tx_fn(self, "get_item"), key)
end

--- Write an item inside the transaction (an action).
-- @tparam table item the item
-- @tparam[opt] table opts `condition`, `return_old`, as for `db:put_item`
-- @treturn true|nil true when written; nil when the condition failed,
--   which cancels the whole transaction
-- @treturn table|string the previous item with `return_old`, or the message
-- @treturn string "ConditionalCheckFailed" when the condition failed,
--   "ValidationError" when a condition string does not parse (the
--   transaction then returns that ValidationError)
-- @raise on misuse: an invalid item or option, a call after the
--   transaction function returned
function Tx:put_item(item, opts)
  if getmetatable(self) ~= Tx or not self._txn then tx_check(self, "put_item") end
  local fn = self._action or "transaction.put_item"
  local cond, return_old
  if opts ~= nil then
    opts = options(fn, opts, TX_OPTS)
    cond, return_old = opts.condition, opts.return_old
  end
  if type(item) ~= "table" then fail(fn, "item must be a table, got %s", type(item)) end
  local db, txn = self._db, self._txn
  if cond ~= nil or db._ttl_fn then
    -- the item under the key is read first: check the key before
    local ok, msg, code, misuse = db._c:check_key(item)
    if not ok then failed(fn, msg, code, misuse) end
    local cmsg
    cond, cmsg = tx_compile(self, fn, cond)
    if cond == false then return nil, cmsg, "ValidationError" end
    local old = tx_current(self, fn, item)
    if cond and not tx_holds(self, fn, item, cond, old) then
      return action_failed(self, "put_item", "ConditionalCheckFailed", "the condition failed")
    end
  end
  -- (the write itself checks the key, with the same message)
  local ok, prev, code, misuse
  if return_old then
    ok, prev, code, misuse = txn:put_return_old(item)
  else
    ok, prev, code, misuse = txn:put(item)
  end
  if not ok then broken(self, fn, prev, code, misuse) end
  self._n = self._n + 1 -- passed(self)
  return true, prev
end

--- Delete an item inside the transaction (an action); deleting a
-- missing item passes.
-- @tparam table key the key attributes
-- @tparam[opt] table opts `condition`, `return_old`
-- @treturn true|nil true, or nil when the condition failed (as `put_item`)
-- @treturn table|string the deleted item with `return_old`, or the message
-- @treturn string "ConditionalCheckFailed" or "ValidationError", as
--   `put_item`
-- @raise on misuse: an invalid key or option, a call after the
--   transaction function returned
function Tx:delete_item(key, opts)
  tx_check(self, "delete_item")
  local fn = tx_fn(self, "delete_item")
  opts = options(fn, opts, TX_OPTS)
  local db, txn = self._db, self._txn
  local ok, msg, code, misuse = db._c:check_key(key)
  if not ok then failed(fn, msg, code, misuse) end
  local cond, cmsg = tx_compile(self, fn, opts.condition)
  if cond == false then return nil, cmsg, "ValidationError" end
  local old = tx_current(self, fn, key)
  if cond and not tx_holds(self, fn, key, cond, old) then
    return action_failed(self, "delete_item", "ConditionalCheckFailed", "the condition failed")
  end
  local prev
  if old then
    local found
    if opts.return_old then
      found, prev, code, misuse = txn:delete_return_old(key)
    else
      found, prev, code, misuse = txn:delete(key)
    end
    if found == nil then broken(self, fn, prev, code, misuse) end
  end
  passed(self)
  return true, prev
end

--- Update (or create) an item inside the transaction (an action).
-- @tparam table key the key attributes
-- @tparam table|function changes as for `db:update_item`
-- @tparam[opt] table opts `condition`, `return_old`
-- @treturn table|nil the new item, or nil when the action failed, which
--   cancels the transaction
-- @treturn table|string the old item with `return_old`, or the message
-- @treturn string "ConditionalCheckFailed", or "ValidationError" when
--   the changes do not fit the item (a reason of the canceled
--   transaction) or a condition string does not parse
-- @raise on misuse: an invalid key, changes or option, a call after the
--   transaction function returned; and whatever an update function
--   raises
function Tx:update_item(key, changes, opts)
  tx_check(self, "update_item")
  local fn = tx_fn(self, "update_item")
  opts = options(fn, opts, TX_OPTS)
  local db, txn = self._db, self._txn
  local ok, msg, code, misuse = db._c:check_key(key)
  if not ok then failed(fn, msg, code, misuse) end
  local plan, pmsg = changes, nil
  if not self._precompiled then plan, pmsg = update.compile(db, fn, changes) end
  if not plan then return action_failed(self, "update_item", "ValidationError", pmsg) end
  local cond, cmsg = tx_compile(self, fn, opts.condition)
  if cond == false then return nil, cmsg, "ValidationError" end
  local old = tx_current(self, fn, key)
  if cond and not tx_holds(self, fn, key, cond, old) then
    return action_failed(self, "update_item", "ConditionalCheckFailed", "the condition failed")
  end
  local new, kept, ucode = update.run(db, fn, txn, key, old, plan, opts.return_old)
  if not new then
    if ucode == "ValidationError" then
      return action_failed(self, "update_item", "ValidationError", kept)
    end
    broken(self, fn, kept, ucode)
  end
  passed(self)
  return new, kept
end

--- Check a condition on an item without writing it (DynamoDB's
-- ConditionCheck, an action); a failed check cancels the transaction.
-- @tparam table key the key attributes
-- @tparam function|string cond a function `(item_or_nil) -> bool` or an
--   expression string
-- @treturn true|nil true when the condition holds
-- @treturn string the message when it failed
-- @treturn string "ConditionalCheckFailed" (or "ValidationError")
-- @raise on an invalid key, a missing condition, a call after the
--   transaction function returned
function Tx:condition_check(key, cond)
  tx_check(self, "condition_check")
  local fn = tx_fn(self, "condition_check")
  local db = self._db
  local ok, msg, code, misuse = db._c:check_key(key)
  if not ok then failed(fn, msg, code, misuse) end
  if cond == nil then fail(fn, "condition is required") end
  local c, cmsg = tx_compile(self, fn, cond)
  if c == false then return nil, cmsg, "ValidationError" end
  local old = tx_current(self, fn, key)
  if not tx_holds(self, fn, key, c, old) then
    return action_failed(self, "condition_check", "ConditionalCheckFailed",
      "the condition failed")
  end
  passed(self)
  return true
end

local ACTION_OF = { put_item = "put", delete_item = "delete", update_item = "update",
  condition_check = "check" }

-- The body run by the write runner: fn(tx), then commit unless canceled.
-- name: the function the user called; precompiled: the actions of
-- transact_write_items, checked and compiled before the transaction.
local function run_tx(db, txn, t, fn, out, name, precompiled)
  local tx = setmetatable({ _db = db, _txn = txn, _now = t, _reasons = {}, _n = 0,
    _canceled = false, _precompiled = precompiled, _action = false }, Tx)
  local res = pack(pcall(fn, tx))
  tx._txn = nil
  local b = tx._broken
  if b then return nil, b.msg, b.code end
  if not res[1] then error(res[2], 0) end
  if tx._invalid then return nil, tx._invalid, "ValidationError" end
  local c = tx._canceled
  if c then
    local r = tx._reasons[c.n]
    local where = precompiled and string_format("actions[%d] (%s)", c.n, ACTION_OF[c.what])
      or string_format("action %d (%s)", c.n, c.what)
    return nil, string_format("dynafile.%s: transaction canceled: %s: %s", name, where,
      r.message), "TransactionCanceled", reasons_of(tx)
  end
  out.n = res.n - 1
  out.v = res
  if not res[2] and res[3] ~= nil and not precompiled then
    -- fn returned nil (or false) and an error: the Lua convention for a
    -- failure, so nothing is committed and its values are the result
    out.rolled_back = true
    return nil, res[3], "RolledBack"
  end
  return true
end

--- Run fn(tx) with the write transaction held: all or nothing
-- (DB:transaction).
-- @local
-- @param db an open database handle
-- @tparam function fn called as fn(tx)
-- @return fn's values, or nil, message, code [, reasons]
-- @raise as DB:transaction
function M.transaction(db, fn)
  if type(fn) ~= "function" then fail("transaction", "argument must be a function") end
  local out = {}
  local ok, msg, code, reasons = handle.write(db, "transaction", run_tx, fn, out,
    "transaction", false)
  if not ok and not out.rolled_back then return nil, msg, code, reasons end
  return unpack(out.v, 2, out.n + 1)
end

-- A string identifying a key's item (two keys with the same identity
-- name the same item).  A number is named by its canonical digits, the
-- number it is whatever its form: 1 and 1.0, the float 2^60 and the
-- integer 1 << 60, the float 0.5 and dynafile.decimal("0.50"); a binary
-- value by its bytes.  (A value no key can hold -- infinity, a table --
-- gets a name of its own: the write refuses it with its own message.)
local function key_identity(db, key)
  local parts = {}
  for i, name in ipairs { db._pk, db._sk or false } do
    local v = name and key[name]
    local tv = type(v)
    if tv == "string" then
      parts[i] = "s" .. v
    elseif tv == "number" then
      local iv = math_tointeger and math_tointeger(v)
      if iv then
        parts[i] = string_format("n%d", iv)
      elseif v - v == 0 then -- finite
        parts[i] = "n" .. types.number_string(v)
      else
        parts[i] = string_format("?%.17g", v)
      end
    elseif v ~= nil and v ~= false then
      local t = types.type(v)
      if t == "N" then
        parts[i] = "n" .. types.number_string(v)
      elseif t == "B" then
        parts[i] = "b" .. v:bytes()
      else
        parts[i] = "?" .. tostring(v)
      end
    else
      parts[i] = ""
    end
  end
  return parts[1] .. "\0" .. parts[2]
end

local ACTION_FIELDS = {
  put = { put = true, condition = true },
  delete = { delete = true, condition = true },
  update = { update = true, changes = true, condition = true },
  check = { check = true, condition = true },
}
local ACTION_KINDS = { "put", "delete", "update", "check" }

-- A put or delete action that needs no Lua code to run: no condition,
-- and no TTL function (which must see the item it replaces).
local function plain_write(tx, a)
  return not a.cond and not tx._db._ttl_fn and (a.kind == "put" or a.kind == "delete")
end

local function run_actions(tx, actions)
  local i, n = 1, #actions
  while i <= n do
    local a = actions[i]
    tx._action = a.where
    if plain_write(tx, a) then
      -- a run of such actions goes to the core in one call, which writes
      -- the keys in key order (the actions name distinct items)
      local ops, m, j = {}, 0, i
      while j <= n and plain_write(tx, actions[j]) do
        local b = actions[j]
        m = m + 1
        ops[m] = b.kind == "put" and b.bytes or key_of(tx._db, b.delete)
        j = j + 1
      end
      local ok, msg, code, misuse = tx._txn:write_batch(ops, m)
      if not ok then broken(tx, a.where, msg, code, misuse) end
      tx._n = tx._n + m -- m actions passed
      i = j
    else
      local opts = { condition = a.cond }
      if a.kind == "put" then
        tx:put_item(a.put, opts)
      elseif a.kind == "delete" then
        tx:delete_item(a.delete, opts)
      elseif a.kind == "update" then
        tx:update_item(a.update, a.plan, opts)
      else
        tx:condition_check(a.check, a.cond)
      end
      i = i + 1
    end
  end
  tx._action = false
  return true
end

--- DynamoDB's TransactWriteItems (DB:transact_write_items).
-- @local
-- @param db an open database handle
-- @tparam table actions the list of actions
-- @return true, or nil, message, code [, reasons]
-- @raise as DB:transact_write_items
function M.transact_write_items(db, actions)
  local fn = "transact_write_items"
  if type(actions) ~= "table" then fail(fn, "actions must be a list") end
  if #actions == 0 then fail(fn, "actions must not be empty") end
  local c = db._c
  local seen, list = {}, {}
  for i, a in ipairs(actions) do
    if type(a) ~= "table" then fail(fn, "actions[%d] must be a table", i) end
    local kind
    for _, k in ipairs(ACTION_KINDS) do
      if a[k] ~= nil then
        if kind then fail(fn, "actions[%d] has both %s and %s", i, kind, k) end
        kind = k
      end
    end
    if not kind then fail(fn, "actions[%d] needs put, delete, update or check", i) end
    for k in pairs(a) do
      if not ACTION_FIELDS[kind][k] then
        fail(fn, "actions[%d]: unknown field '%s' for a %s", i, tostring(k), kind)
      end
    end
    if type(a[kind]) ~= "table" then fail(fn, "actions[%d].%s must be a table", i, kind) end
    local where = string_format("%s: actions[%d]", fn, i)
    local ok, msg, code, misuse = c:check_key(a[kind])
    if not ok then failed(where, msg, code, misuse) end
    local bytes
    if kind == "put" then
      bytes, msg, code, misuse = c:encode(a.put)
      if not bytes then failed(where, msg, code, misuse) end
    end
    local plan
    if kind == "update" then
      if a.changes == nil then fail(fn, "actions[%d]: an update needs changes", i) end
      local pmsg
      plan, pmsg = update.compile(db, where, a.changes)
      if not plan then return nil, pmsg, "ValidationError" end
    end
    if kind == "check" and a.condition == nil then
      fail(fn, "actions[%d]: a check needs a condition", i)
    end
    local cond
    if a.condition ~= nil then
      if type(a.condition) ~= "function" and type(a.condition) ~= "string"
          and not expr.is(a.condition) and core.kind(a.condition) ~= "expr" then
        fail(fn, "actions[%d].condition must be a function, an expression string or a "
          .. "dynafile.expr", i)
      end
      cond, msg = compile_condition(where, a.condition)
      if not cond then return nil, msg, "ValidationError" end
    end
    local id = key_identity(db, a[kind])
    if seen[id] then
      return nil, string_format("dynafile.%s: actions[%d] and actions[%d] name the same item "
        .. "(one action per item)", fn, seen[id], i), "ValidationError"
    end
    seen[id] = i
    list[i] = { kind = kind, [kind] = a[kind], plan = plan, cond = cond, where = where,
      bytes = bytes }
  end
  local out = {}
  local ok, msg, code, reasons = handle.write(db, fn, run_tx,
    function(tx) return run_actions(tx, list) end, out, fn, true)
  if not ok then return nil, msg, code, reasons end
  return true
end

return M
