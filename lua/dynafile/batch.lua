--- dynafile.batch: batch writers and transactions.
--
-- A batch writer queues puts and deletes (an item is encoded when it is
-- queued, so a bad item raises there and later changes to the table do
-- not matter) and applies them in the order given, in one LMDB write
-- transaction per flush, however many partitions they touch: a later
-- operation on a key wins over an earlier one.
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
-- Invariant: nothing reaches the database unless the whole batch or
-- transaction commits; listeners hear of it only after the commit.
-- @module dynafile.batch

local error, type, pairs, ipairs, pcall, select = error, type, pairs, ipairs, pcall, select
local setmetatable, getmetatable, tostring = setmetatable, getmetatable, tostring
local string_format = string.format
local math_floor = math.floor
local math_tointeger = math.tointeger -- nil before Lua 5.3
local unpack = table.unpack or unpack -- luacheck: ignore 143

local update = require "dynafile.update"
local expr = require "dynafile.expr"
local core = require "dynafile.core"

return function(M)
  local DB = M._DB
  local write_txn = M._write_txn
  local current = M._current
  local compile_condition = M._compile_condition
  local check_opts = M._check_opts
  local condition_holds = M._condition_holds
  local check_writable = M._check_writable

  local function fail(fn, fmt, ...)
    error(string_format("dynafile.%s: " .. fmt, fn, ...), 3)
  end

  local function check_db(db, fn)
    if getmetatable(db) ~= DB then
      error(string_format("dynafile.%s: expected a database handle (use db:%s)", fn, fn), 3)
    end
    if db._c:closed() then error(string_format("dynafile.%s: database is closed", fn), 3) end
  end

  -- --------------------------------------------------------- batch writer

  --- A batch writer, from `db:batch_writer`: queues puts and deletes and
  -- commits them, in order, in one transaction per flush.
  -- @type batch_writer

  local Writer = {}
  Writer.__index = Writer
  Writer.__name = "dynafile.batch_writer"

  local function writer_check(w, fn)
    if getmetatable(w) ~= Writer then
      error(string_format("dynafile.batch_writer.%s: expected a batch writer (use w:%s)",
        fn, fn), 3)
    end
    if w._closed then
      error(string_format("dynafile.batch_writer.%s: the batch writer is closed", fn), 3)
    end
  end

  --- Queue a put.  The item is encoded now: an invalid item (a missing
  -- key attribute, a value that cannot be stored) raises here, not at
  -- flush, and later changes to the table do not matter.  Only a key or
  -- index value over the length limits is found at flush, which then
  -- raises and writes nothing (`w:discard()` drops the batch).
  -- @tparam table item the item, holding the key attributes
  -- @treturn true always
  -- @raise on an invalid item (as for `db:put_item`) or a closed writer
  function Writer:put_item(item)
    writer_check(self, "put_item")
    local c = self._db._c
    if type(item) ~= "table" then
      fail("batch_writer.put_item", "item must be a table, got %s", type(item))
    end
    c:check_key(item, "batch_writer.put_item")
    local n = self._n + 1
    self._ops[n] = c:encode(item, "batch_writer.put_item")
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
    db._c:check_key(key, "batch_writer.delete_item")
    local k = { [db._pk] = key[db._pk] }
    if db._sk then k[db._sk] = key[db._sk] end
    local n = self._n + 1
    self._ops[n] = k
    self._n = n
    return true
  end

  local function flush_body(db, txn, t, ops, n)
    local ttl_fn = db._ttl_fn
    local decode = M._decode
    for i = 1, n do
      local op = ops[i]
      local ok, msg, code
      if type(op) == "string" then
        if ttl_fn then current(db, txn, decode(op), t) end
        ok, msg, code = txn:put(op, false, "batch_writer.flush")
      else
        if ttl_fn then current(db, txn, op, t) end
        ok, msg, code = txn:delete(op, false, "batch_writer.flush")
      end
      if ok == nil then return nil, msg, code end
    end
    return true
  end

  --- Apply every queued operation, in order, in one transaction; a later
  -- operation on a key wins over an earlier one.  Listeners hear one event
  -- per operation after the commit.  The writer stays open.
  -- @treturn true|nil true on success
  -- @treturn string message on failure (the operations stay queued)
  -- @treturn string code on failure ("IOError", ...)
  -- @raise on a closed writer, a closed or read-only database, a flush from
  --   inside one of this database's own transactions (which would wait for
  --   itself)
  function Writer:flush()
    writer_check(self, "flush")
    local db = self._db
    check_db(db, "batch_writer.flush")
    check_writable(db, "batch_writer.flush")
    if self._n == 0 then return true end
    local ok, msg, code = write_txn(db, flush_body, self._ops, self._n)
    if not ok then return nil, msg, code end
    self._ops, self._n = {}, 0
    return true
  end

  --- Flush and close.  The writer is closed even when the flush fails.
  -- Closing twice is fine.
  -- @treturn true|nil true on success
  -- @treturn string message on failure
  -- @treturn string code on failure
  -- @raise as flush does
  function Writer:close()
    if getmetatable(self) ~= Writer then writer_check(self, "close") end
    if self._closed then return true end
    local ok, msg, code = self:flush()
    self._ops, self._n = {}, 0
    self._closed = true
    if not ok then return nil, msg, code end
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

  -- Lua 5.4 `local w <close>`: commit at normal scope exit (raising when
  -- the commit fails: a __close handler cannot return it), discard when
  -- the scope exits by an error.
  function Writer.__close(w, err)
    if w._closed then return end
    if err ~= nil then
      w:discard()
      return
    end
    local ok, msg = w:close()
    if not ok then error(msg, 0) end
  end

  --- A batch writer: `w:put_item` and `w:delete_item` queue operations,
  -- `w:flush` commits them all in one transaction.  On Lua 5.4, `local w
  -- <close> = db:batch_writer()` commits when the scope ends normally
  -- (raising if that commit fails) and discards when it ends by an error.
  -- @treturn batch_writer the writer
  -- @raise when the database is closed
  -- @usage local w <close> = db:batch_writer()
  -- for _, e in ipairs(entities) do w:put_item(e) end
  function DB:batch_writer()
    check_db(self, "batch_writer")
    return setmetatable({ _db = self, _ops = {}, _n = 0, _closed = false }, Writer)
  end

  --- Run fn(w) with a batch writer and commit what it queued in one
  -- transaction; when fn raises, nothing is written and the error is
  -- raised again.
  -- @tparam function fn called as fn(w)
  -- @treturn true|nil true on success
  -- @treturn string message on failure
  -- @treturn string code on failure
  -- @raise when fn is not a function, the database is closed or read-only,
  --   a call from inside one of this database's own transactions; and
  --   whatever fn raises, after discarding its operations
  function DB:batch_write(fn)
    check_db(self, "batch_write")
    if type(fn) ~= "function" then fail("batch_write", "argument must be a function") end
    check_writable(self, "batch_write")
    local w = self:batch_writer()
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

  local function tx_check(tx, fn)
    if getmetatable(tx) ~= Tx then
      error(string_format("dynafile.transaction.%s: expected the transaction object (use tx:%s)",
        fn, fn), 3)
    end
    if not tx._txn then
      error(string_format("dynafile.transaction.%s: the transaction is over", fn), 3)
    end
  end

  -- Record the outcome of one action: passed, or failed (which cancels the
  -- transaction and gives the action its results: nil, message, code).
  local function passed(tx)
    local r = tx._reasons
    r[#r + 1] = { code = "None" }
  end

  local function failed(tx, what, code, msg)
    local r = tx._reasons
    r[#r + 1] = { code = code, message = msg }
    if not tx._canceled then tx._canceled = { n = #r, what = what } end
    return nil, msg, code
  end

  -- The action's condition, compiled; nil when none; false, message when
  -- a string does not parse (the whole transaction is then a
  -- ValidationError).
  local function tx_compile(tx, fn, cond)
    if cond == nil or tx._precompiled then return cond end
    local c, msg = compile_condition("transaction." .. fn, cond)
    if not c then
      tx._invalid = tx._invalid or msg
      return false, msg
    end
    return c
  end

  -- A write the core refused (the map must grow: "Retry"; an I/O error)
  -- dooms the LMDB transaction: stop the function by raising; run_tx
  -- then returns the failure (write_txn runs it all again on "Retry").
  local broken_mt = { __tostring = function(b) return b.msg end }
  local function broken(tx, msg, code)
    tx._broken = setmetatable({ msg = msg, code = code }, broken_mt)
    error(tx._broken, 0)
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
    tx_check(self, "put_item")
    local fn = "transaction.put_item"
    opts = check_opts(fn, opts, TX_OPTS)
    if type(item) ~= "table" then fail(fn, "item must be a table, got %s", type(item)) end
    local db, txn = self._db, self._txn
    db._c:check_key(item, fn)
    local cond, cmsg = tx_compile(self, "put_item", opts.condition)
    if cond == false then return nil, cmsg, "ValidationError" end
    if cond or db._ttl_fn then
      local old = current(db, txn, item, self._now)
      if cond and not condition_holds(db, txn, item, cond, true, old) then
        return failed(self, "put_item", "ConditionalCheckFailed",
          "the condition failed")
      end
    end
    local ok, prev, code = txn:put(item, opts.return_old, fn)
    if not ok then broken(self, prev, code) end
    passed(self)
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
    local fn = "transaction.delete_item"
    opts = check_opts(fn, opts, TX_OPTS)
    local db, txn = self._db, self._txn
    db._c:check_key(key, fn)
    local cond, cmsg = tx_compile(self, "delete_item", opts.condition)
    if cond == false then return nil, cmsg, "ValidationError" end
    local old = current(db, txn, key, self._now)
    if cond and not condition_holds(db, txn, key, cond, true, old) then
      return failed(self, "delete_item", "ConditionalCheckFailed",
        "the condition failed")
    end
    local prev
    if old then
      local found, p, code = txn:delete(key, opts.return_old, fn)
      if found == nil then broken(self, p, code) end
      prev = p
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
    local fn = "transaction.update_item"
    opts = check_opts(fn, opts, TX_OPTS)
    local db, txn = self._db, self._txn
    db._c:check_key(key, fn)
    local plan, pmsg = changes, nil
    if not self._precompiled then plan, pmsg = update.compile(db, fn, changes) end
    if not plan then return failed(self, "update_item", "ValidationError", pmsg) end
    local cond, cmsg = tx_compile(self, "update_item", opts.condition)
    if cond == false then return nil, cmsg, "ValidationError" end
    local old = current(db, txn, key, self._now)
    if cond and not condition_holds(db, txn, key, cond, true, old) then
      return failed(self, "update_item", "ConditionalCheckFailed",
        "the condition failed")
    end
    local new, kept, code = update.run(db, fn, txn, key, old, plan, opts.return_old)
    if not new then
      if code == "ValidationError" then
        return failed(self, "update_item", "ValidationError", kept)
      end
      broken(self, kept, code)
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
    local fn = "transaction.condition_check"
    local db, txn = self._db, self._txn
    db._c:check_key(key, fn)
    if cond == nil then fail(fn, "condition is required") end
    local c, cmsg = tx_compile(self, "condition_check", cond)
    if c == false then return nil, cmsg, "ValidationError" end
    local old = current(db, txn, key, self._now)
    if not condition_holds(db, txn, key, c, true, old) then
      return failed(self, "condition_check", "ConditionalCheckFailed",
        "the condition failed")
    end
    passed(self)
    return true
  end

  local ACTION_OF = { put_item = "put", delete_item = "delete", update_item = "update",
    condition_check = "check" }

  -- The body run by write_txn: fn(tx), then commit unless canceled.
  local function run_tx(db, txn, t, fn, out, name, precompiled)
    local tx = setmetatable({ _db = db, _txn = txn, _now = t, _reasons = {},
      _canceled = false, _precompiled = precompiled }, Tx)
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
        r.message), "TransactionCanceled", tx._reasons
    end
    out.n = res.n - 1
    out.v = res
    return true
  end

  --- Run fn(tx) with the write transaction held: all or nothing.
  -- `tx:get_item`, `tx:put_item`, `tx:delete_item`, `tx:update_item`,
  -- `tx:condition_check(key, c)` work as the db methods do, inside the
  -- transaction (reads see its writes).  Every action that fails (its
  -- condition, or an update that does not fit the item) cancels the
  -- transaction; fn goes on running and may look at what the actions
  -- returned.  fn may run again, from the start, when the database had to
  -- grow.  Writes through the db itself (not tx) raise inside fn.
  -- @tparam function fn called as fn(tx)
  -- @return fn's return values; or nil, message, "TransactionCanceled",
  --   reasons (one `{code = "None"}`, `{code = "ConditionalCheckFailed",
  --   message = ...}` or `{code = "ValidationError", message = ...}` per
  --   action, in order); or nil, message, "ValidationError" when a
  --   condition string did not parse; or nil, message, code on an I/O
  --   failure
  -- @raise when fn is not a function, the database is closed or read-only,
  --   a transaction of this database is already held here; and whatever
  --   fn raises, after rolling back
  function DB:transaction(fn)
    check_db(self, "transaction")
    if type(fn) ~= "function" then fail("transaction", "argument must be a function") end
    check_writable(self, "transaction")
    local out = {}
    local ok, msg, code, reasons = write_txn(self, run_tx, fn, out, "transaction", false)
    if not ok then return nil, msg, code, reasons end
    return unpack(out.v, 2, out.n + 1)
  end

  -- A string identifying a key's item (two keys with the same identity
  -- name the same item: 1 and 1.0 are one number).
  local function key_identity(db, key)
    local parts = {}
    for i, name in ipairs { db._pk, db._sk or false } do
      local v = name and key[name]
      if type(v) == "number" then
        local iv = math_tointeger and math_tointeger(v)
        if iv then
          parts[i] = string_format("n%d", iv)
        elseif v == math_floor(v) and v > -2 ^ 63 and v < 2 ^ 63 then
          parts[i] = string_format("n%.0f", v)
        else
          parts[i] = string_format("n%.17g", v)
        end
      elseif v ~= nil and v ~= false then
        parts[i] = "s" .. v
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

  local function run_actions(tx, actions)
    for i = 1, #actions do
      local a = actions[i]
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
    end
    return true
  end

  --- DynamoDB's TransactWriteItems: a list of actions `{put = item,
  -- condition = c}`, `{delete = key, condition = c}`, `{update = key,
  -- changes = ch, condition = c}`, `{check = key, condition = c}`, done
  -- all together or not at all.
  -- @tparam table actions the list of actions
  -- @treturn true|nil true on success
  -- @treturn string message on failure
  -- @treturn string code on failure: "TransactionCanceled" (an action
  --   failed), "ValidationError" (two actions name the same item, or a
  --   condition string does not parse), "IOError"
  -- @treturn table reasons with "TransactionCanceled": one entry per
  --   action, in order
  -- @raise on misuse: an empty list, an action with an unknown field or
  --   without a key, an invalid item, key or changes; a closed or read-only
  --   database; and whatever an update function raises
  function DB:transact_write_items(actions)
    local fn = "transact_write_items"
    check_db(self, fn)
    if type(actions) ~= "table" then fail(fn, "actions must be a list") end
    if #actions == 0 then fail(fn, "actions must not be empty") end
    check_writable(self, fn)
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
      self._c:check_key(a[kind], where)
      if kind == "put" then self._c:encode(a.put, where) end
      local plan
      if kind == "update" then
        if a.changes == nil then fail(fn, "actions[%d]: an update needs changes", i) end
        local pmsg
        plan, pmsg = update.compile(self, where, a.changes)
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
        local msg
        cond, msg = compile_condition(where, a.condition)
        if not cond then return nil, msg, "ValidationError" end
      end
      local id = key_identity(self, a[kind])
      if seen[id] then
        return nil, string_format("dynafile.%s: actions[%d] and actions[%d] name the same item "
          .. "(one action per item)", fn, seen[id], i), "ValidationError"
      end
      seen[id] = i
      list[i] = { kind = kind, [kind] = a[kind], plan = plan, cond = cond }
    end
    local out = {}
    local ok, msg, code, reasons = write_txn(self, run_tx,
      function(tx) return run_actions(tx, list) end, out, fn, true)
    if not ok then return nil, msg, code, reasons end
    return true
  end
end
