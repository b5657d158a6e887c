--- dynafile.batch: batch writers and transactions.
--
-- A batch writer collects puts and deletes (encoded at once, so a bad item
-- raises where it is added) and applies them in order in one LMDB write
-- transaction at flush.  A transaction runs a Lua function with the write
-- transaction held; everything it does commits together or not at all.
-- Invariant: nothing reaches the database unless the whole batch or
-- transaction commits; listeners hear of it only after the commit.
-- @module dynafile.batch

local error, type, pairs, ipairs, pcall, select = error, type, pairs, ipairs, pcall, select
local setmetatable, tostring = setmetatable, tostring
local string_format = string.format
local math_floor = math.floor
local math_tointeger = math.tointeger
local unpack = table.unpack or unpack -- luacheck: ignore 143

return function(M)
  local DB = M._DB
  local write_txn = M._write_txn
  local current = M._current
  local compile_condition = M._compile_condition
  local check_opts = M._check_opts
  local update = require "dynafile.update"
  local condition_holds = M._condition_holds

  local function fail(fn, fmt, ...)
    error(string_format("dynafile.%s: " .. fmt, fn, ...), 3)
  end

  -- --------------------------------------------------------- batch writer

  --- A batch writer, from `db:batch_writer`: collects puts and deletes and
  -- commits them in one transaction.
  -- @type batch_writer

  local Writer = {}
  Writer.__index = Writer
  Writer.__name = "dynafile.batch_writer"

  local function writer_check(w, fn)
    if getmetatable(w) ~= Writer then
      error(string_format("dynafile.%s: expected a batch writer (use w:%s)", fn, fn:match("[%w_]+$")), 3)
    end
    if w._closed then error(string_format("dynafile.%s: batch writer is closed", fn), 3) end
  end

  --- Queue a put.  The item is encoded now: an invalid item raises here,
  -- not at flush.
  -- @tparam table item the item, holding the key attributes
  -- @treturn true always
  -- @raise on an invalid item (as for `db:put_item`) or a closed writer
  function Writer:put_item(item)
    writer_check(self, "batch_writer.put_item")
    local bytes = self._db._c:encode(item, "batch_writer.put_item")
    self._db._c:check_key(item, "batch_writer.put_item")
    local ops = self._ops
    ops[#ops + 1] = bytes
    return true
  end

  --- Queue a delete.  Deleting a missing item is not an error.
  -- @tparam table key the key attributes
  -- @treturn true always
  -- @raise on an invalid key or a closed writer
  function Writer:delete_item(key)
    writer_check(self, "batch_writer.delete_item")
    local db = self._db
    db._c:check_key(key, "batch_writer.delete_item")
    local k = { [db._pk] = key[db._pk] }
    if db._sk then k[db._sk] = key[db._sk] end
    local ops = self._ops
    ops[#ops + 1] = k
    return true
  end

  local function flush_body(db, txn, t, ops)
    local ttl_fn = db._ttl_fn
    for i = 1, #ops do
      local op = ops[i]
      if type(op) == "string" then
        if ttl_fn then current(db, txn, M._decode(op), t) end
        txn:put(op, false, "batch_writer.flush")
      else
        if ttl_fn then current(db, txn, op, t) end
        txn:delete(op, false, "batch_writer.flush")
      end
    end
    return true
  end

  --- Apply every queued operation in one transaction, in order; listeners
  -- hear one event per operation after the commit.  The writer stays open.
  -- @treturn true|nil true on success
  -- @treturn string message on failure (the operations stay queued)
  -- @treturn string code on failure ("IOError", ...)
  -- @raise on a closed writer, a closed or read-only database, a flush from
  --   inside one of this database's own transactions
  function Writer:flush()
    writer_check(self, "batch_writer.flush")
    local ops = self._ops
    if #ops == 0 then return true end
    local ok, msg, code = write_txn(self._db, flush_body, ops)
    if not ok then return nil, msg, code end
    self._ops = {}
    return true
  end

  --- Flush and close.  Closing twice is fine.
  -- @treturn true|nil true on success
  -- @treturn string message on failure
  -- @treturn string code on failure
  -- @raise as flush does
  function Writer:close()
    if self._closed then return true end
    local ok, msg, code = self:flush()
    self._closed = true
    if not ok then return nil, msg, code end
    return true
  end

  --- Drop every queued operation and close.
  -- @return nothing
  -- @raise nothing
  function Writer:discard()
    self._ops = {}
    self._closed = true
  end

  -- Lua 5.4: commit at normal scope exit, discard on error.
  Writer.__close = function(w, err)
    if w._closed then return end
    if err ~= nil then
      w:discard()
    else
      local ok, msg = w:close()
      if not ok then error(msg, 0) end
    end
  end

  --- A batch writer: `w:put_item` and `w:delete_item` queue operations, and
  -- `w:flush` commits them all in one transaction.  On Lua 5.4, `local w
  -- <close> = db:batch_writer()` flushes when the scope ends normally and
  -- discards when it ends with an error.
  -- @treturn batch_writer the writer
  -- @raise when the database is closed
  -- @usage local w <close> = db:batch_writer()
  -- for _, e in ipairs(entities) do w:put_item(e) end
  function DB:batch_writer()
    if self._c:closed() then error("dynafile.batch_writer: database is closed", 2) end
    return setmetatable({ _db = self, _ops = {}, _closed = false }, Writer)
  end

  --- Run fn(w) with a batch writer and commit its operations in one
  -- transaction; discard them when fn raises (the error is re-raised).
  -- @tparam function fn called as fn(w)
  -- @treturn true|nil true on success
  -- @treturn string message on failure
  -- @treturn string code on failure
  -- @raise when fn is not a function, the database is closed; and whatever
  --   fn raises, after discarding its operations
  function DB:batch_write(fn)
    if type(fn) ~= "function" then fail("batch_write", "argument must be a function") end
    local w = self:batch_writer()
    local ok, err = pcall(fn, w)
    if not ok then
      w:discard()
      error(err, 0)
    end
    if w._closed then return true end
    return w:close()
  end

  -- --------------------------------------------------------- transactions

  --- The transaction object given to `db:transaction`'s function; valid only
  -- until that function returns.
  -- @type transaction

  local Tx = {}
  Tx.__index = Tx
  Tx.__name = "dynafile.transaction"

  local function tx_check(tx, fn)
    if getmetatable(tx) ~= Tx then
      error(string_format("dynafile.transaction.%s: expected the transaction object (use tx:%s)", fn, fn), 3)
    end
    if not tx._txn then
      error(string_format("dynafile.transaction.%s: the transaction is over", fn), 3)
    end
  end

  local function reason(tx, ok, msg)
    local r = tx._reasons
    if ok then
      r[#r + 1] = { code = "None" }
    else
      r[#r + 1] = { code = "ConditionalCheckFailed", message = msg }
      tx._canceled = tx._canceled or #r
    end
  end

  -- Check opts.condition for an action; returns ok, old.
  local function tx_condition(tx, fn, key, cond)
    local db = tx._db
    local old = current(db, tx._txn, key, tx._now)
    if cond ~= nil then
      local c, msg = compile_condition("transaction." .. fn, cond)
      if not c then error(msg, 3) end
      if not condition_holds(db, tx._txn, key, c, true, old) then
        local m = string_format("dynafile.transaction.%s: the condition failed", fn)
        reason(tx, false, m)
        return false, old, m
      end
    end
    return true, old
  end

  local TX_OPTS = { condition = true, return_old = true }

  --- Read an item, seeing the transaction's own writes.
  -- @tparam table key the key attributes
  -- @treturn table|nil the item, or nil when missing or expired
  -- @raise on an invalid key or a call after the transaction function
  --   returned
  function Tx:get_item(key)
    tx_check(self, "get_item")
    return current(self._db, self._txn, key, self._now)
  end

  --- Write an item inside the transaction.
  -- @tparam table item the item
  -- @tparam[opt] table opts `condition`, `return_old`, as for `db:put_item`
  -- @treturn true|nil true when written; nil when the condition failed,
  --   which cancels the whole transaction (later writes are not applied and
  --   `db:transaction` returns nil, message, "TransactionCanceled", reasons)
  -- @treturn table|string the previous item with `return_old`, or the message
  -- @treturn string "ConditionalCheckFailed" when the condition failed
  -- @raise on misuse: an invalid item or option, a condition string that
  --   does not parse, a call after the transaction function returned
  function Tx:put_item(item, opts)
    tx_check(self, "put_item")
    opts = check_opts("transaction.put_item", opts, TX_OPTS)
    if type(item) ~= "table" then fail("transaction.put_item", "item must be a table") end
    self._db._c:check_key(item, "transaction.put_item")
    local ok, _, msg = tx_condition(self, "put_item", item, opts.condition)
    if not ok then return nil, msg, "ConditionalCheckFailed" end
    if opts.condition == nil then reason(self, true) elseif ok then reason(self, true) end
    if self._canceled then return true end
    local _, prev = self._txn:put(item, opts.return_old, "transaction.put_item")
    return true, prev
  end

  --- Delete an item inside the transaction.
  -- @tparam table key the key attributes
  -- @tparam[opt] table opts `condition`, `return_old`
  -- @treturn true|nil true, or nil when the condition failed (as `put_item`)
  -- @treturn table|string the deleted item with `return_old`, or the message
  -- @treturn string "ConditionalCheckFailed" when the condition failed
  -- @raise on misuse: an invalid key or option, a condition string that
  --   does not parse, a call after the transaction function returned
  function Tx:delete_item(key, opts)
    tx_check(self, "delete_item")
    opts = check_opts("transaction.delete_item", opts, TX_OPTS)
    self._db._c:check_key(key, "transaction.delete_item")
    local ok, old, msg = tx_condition(self, "delete_item", key, opts.condition)
    if not ok then return nil, msg, "ConditionalCheckFailed" end
    reason(self, true)
    if self._canceled or not old then return true end
    local _, prev = self._txn:delete(key, opts.return_old, "transaction.delete_item")
    return true, prev
  end

  --- Update (or create) an item inside the transaction.
  -- @tparam table key the key attributes
  -- @tparam table|function changes as for `db:update_item`
  -- @tparam[opt] table opts `condition`
  -- @treturn table|nil the new item, or nil when the condition failed
  -- @treturn string the message when the condition failed
  -- @treturn string "ConditionalCheckFailed" when the condition failed
  -- @raise on misuse: an invalid key, changes or option, a condition string that
  --   does not parse, a call after the transaction function returned;
  --   and whatever an update function raises
  function Tx:update_item(key, changes, opts)
    tx_check(self, "update_item")
    opts = check_opts("transaction.update_item", opts, TX_OPTS)
    local db = self._db
    db._c:check_key(key, "transaction.update_item")
    update.check(db, "transaction.update_item", key, changes)
    local ok, old, msg = tx_condition(self, "update_item", key, opts.condition)
    if not ok then return nil, msg, "ConditionalCheckFailed" end
    reason(self, true)
    local new = update.apply(db, "transaction.update_item", key, old, changes)
    if not self._canceled then self._txn:put(new, false, "transaction.update_item") end
    return new
  end

  --- Check a condition on an item without writing it (DynamoDB's
  -- ConditionCheck); a failed check cancels the transaction.
  -- @tparam table key the key attributes
  -- @tparam function|string cond a function `(item_or_nil) -> bool` or an
  --   expression string
  -- @treturn true|nil true when the condition holds
  -- @treturn string the message when it failed
  -- @treturn string "ConditionalCheckFailed" when it failed
  -- @raise on an invalid key, a missing condition, a condition string that
  --   does not parse, a call after the transaction function returned
  function Tx:condition_check(key, cond)
    tx_check(self, "condition_check")
    self._db._c:check_key(key, "transaction.condition_check")
    if cond == nil then fail("transaction.condition_check", "condition is required") end
    local ok, _, msg = tx_condition(self, "condition_check", key, cond)
    if not ok then return nil, msg, "ConditionalCheckFailed" end
    reason(self, true)
    return true
  end

  local function canceled_message(tx)
    local i = tx._canceled
    return string_format("transaction canceled: action %d: %s", i, tx._reasons[i].message)
  end

  local function run_body(db, txn, t, fn, packed)
    local tx = setmetatable({ _db = db, _txn = txn, _now = t, _reasons = {}, _canceled = false }, Tx)
    local res = { pcall(fn, tx) }
    tx._txn = nil
    if not res[1] then error(res[2], 0) end
    if tx._canceled then
      return nil, canceled_message(tx), "TransactionCanceled", tx._reasons
    end
    packed.n = select("#", unpack(res)) - 1
    packed.v = res
    return true
  end

  --- Run fn(tx) with the write transaction held: all or nothing.  tx has
  -- `get_item`, `put_item`, `delete_item`, `update_item` and `condition_check`.
  -- fn may run again (from the start) if the database's map had to grow, so
  -- it should not have effects outside the transaction.
  -- @tparam function fn called as fn(tx)
  -- @return fn's return values; or nil, message, "TransactionCanceled",
  --   reasons (one `{code = "None"}` or `{code = "ConditionalCheckFailed",
  --   message = ...}` per action, in order) when a condition failed; or nil,
  --   message, code on an I/O failure
  -- @raise when fn is not a function, the database is closed or read-only,
  --   a transaction is already held by this thread; and whatever fn raises,
  --   after rolling back
  function DB:transaction(fn)
    if type(fn) ~= "function" then fail("transaction", "argument must be a function") end
    if self._c:closed() then fail("transaction", "database is closed") end
    local packed = {}
    local ok, msg, code, reasons = write_txn(self, run_body, fn, packed)
    if not ok then return nil, msg, code, reasons end
    return unpack(packed.v, 2, packed.n + 1)
  end

  local function key_identity(db, key)
    local parts = {}
    for i, name in ipairs { db._pk, db._sk or false } do
      if name then
        local v = key[name]
        if type(v) == "number" then
          local iv = math_tointeger and math_tointeger(v)
          if iv then
            parts[i] = "n" .. string_format("%d", iv)
          elseif v == math_floor(v) and v > -2 ^ 63 and v < 2 ^ 63 then
            parts[i] = "n" .. string_format("%.0f", v)
          else
            parts[i] = "n" .. string_format("%.17g", v)
          end
        else
          parts[i] = "s" .. tostring(v)
        end
      end
    end
    return (parts[1] or "") .. "\0" .. (parts[2] or "")
  end

  local ACTION_FIELDS = {
    put = { put = true, condition = true },
    delete = { delete = true, condition = true },
    update = { update = true, changes = true, condition = true },
    check = { check = true, condition = true },
  }

  --- DynamoDB's TransactWriteItems: a list of `{put = item, condition = c}`,
  -- `{delete = key, condition = c}`, `{update = key, changes = ch, condition
  -- = c}`, `{check = key, condition = c}`, applied all or nothing.
  -- @tparam table actions the list of actions
  -- @treturn true|nil true on success
  -- @treturn string message on failure
  -- @treturn string code on failure: "TransactionCanceled" (a condition
  --   failed), "ValidationError" (two actions touch the same item), "IOError"
  -- @treturn table reasons with "TransactionCanceled": one entry per action
  -- @raise on misuse: an empty list, an action with an unknown field or
  --   without a key, an invalid item, key or changes; a closed or read-only
  --   database
  function DB:transact_write_items(actions)
    local fn = "transact_write_items"
    if type(actions) ~= "table" then fail(fn, "actions must be a list") end
    if #actions == 0 then fail(fn, "actions must not be empty") end
    local seen = {}
    for i, a in ipairs(actions) do
      if type(a) ~= "table" then fail(fn, "actions[%d] must be a table", i) end
      local kind
      for k in pairs(ACTION_FIELDS) do
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
      self._c:check_key(a[kind], fn)
      if kind == "put" then self._c:encode(a.put, fn) end
      if kind == "update" then update.check(self, fn, a.update, a.changes) end
      if kind == "check" and a.condition == nil then
        fail(fn, "actions[%d]: a check needs a condition", i)
      end
      if a.condition ~= nil and type(a.condition) ~= "function" and type(a.condition) ~= "string" then
        fail(fn, "actions[%d].condition must be a function or an expression string", i)
      end
      local id = key_identity(self, a[kind])
      if seen[id] then
        return nil, string_format(
          "dynafile.%s: actions[%d] and actions[%d] touch the same item", fn, seen[id], i),
          "ValidationError"
      end
      seen[id] = i
    end
    local ok, msg, code, reasons = self:transaction(function(tx)
      for _, a in ipairs(actions) do
        if a.put then
          tx:put_item(a.put, { condition = a.condition })
        elseif a.delete then
          tx:delete_item(a.delete, { condition = a.condition })
        elseif a.update then
          tx:update_item(a.update, a.changes, { condition = a.condition })
        else
          tx:condition_check(a.check, a.condition)
        end
      end
      return true
    end)
    if not ok then return nil, msg, code, reasons end
    return true
  end
end
