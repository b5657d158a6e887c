--- dynafile.remote.batch: batch writes and transactions on DynamoDB.
--
-- The batch writer sends its operations with BatchWriteItem in chunks of
-- 25 (the last operation on a key wins, as locally), sending
-- UnprocessedItems again after an exponential backoff with jitter.  Unlike
-- a local batch, a flush of more than 25 operations is not atomic: chunks
-- are applied one after the other.  A failed flush keeps every operation
-- queued (puts and deletes are safe to send again).
--
-- `transact_write_items` is TransactWriteItems, with a ClientRequestToken
-- so that a request sent again after a lost response is applied once.
-- `transaction(fn)` runs fn optimistically: reads are strongly consistent
-- and remembered, writes are buffered (reads see them), conditions are
-- evaluated here on the items as read, and the commit is one
-- TransactWriteItems in which every item read or written must still be
-- exactly as read; when one changed, fn runs again from the start.
--
-- Invariant: nothing a transaction function does reaches DynamoDB unless
-- the whole commit is accepted; listeners hear of it only afterwards.
-- @module dynafile.remote.batch

local errors = require "dynafile.errors"
local update = require "dynafile.update"
local rand = require "openssl.rand"
local sigv4 = require "dynafile.remote.sigv4"
local expr = require "dynafile.remote.expr"
local values = require "dynafile.remote.values"

local error, type, pairs, ipairs, pcall, select, tostring =
  error, type, pairs, ipairs, pcall, select, tostring
local setmetatable, getmetatable = setmetatable, getmetatable
local string_format = string.format
local math_min = math.min
local http = require "dynafile.remote.http"
local unpack = table.unpack or unpack -- luacheck: ignore 143

local encode_item = values.encode_item

return function(M)
  local DB, I = M.DB, M._internal
  local fail, check_open, check_writable, check_key, check_opts = I.fail, I.check_open,
    I.check_writable, I.check_key, I.check_opts
  local check_item = I.check_item

  -- A ClientRequestToken: 16 random bytes from OpenSSL, in hex.  Never
  -- from math.random, whose sequence a program (or a test runner) may
  -- seed alike in two runs: DynamoDB would then answer the second run's
  -- transaction with the first one's result, without applying it.
  local function token()
    return sigv4.hex(rand.bytes(16))
  end

  -- ----------------------------------------------------------- batch writer

  local Writer = {}
  Writer.__index = Writer
  Writer.__name = "dynafile.remote.batch_writer"

  local function writer_check(w, fn)
    if getmetatable(w) ~= Writer then
      error(string_format("dynafile.batch_writer.%s: expected a batch writer (use w:%s)",
        fn, fn), 3)
    end
    if w._closed then
      error(string_format("dynafile.batch_writer.%s: the batch writer is closed", fn), 3)
    end
  end

  --- Queue a put (the item is encoded now).
  -- @tparam table item the item, holding the key attributes
  -- @treturn true
  -- @raise on an invalid item, a closed writer
  function Writer:put_item(item)
    writer_check(self, "put_item")
    local db = self._db
    if type(item) ~= "table" then
      fail("batch_writer.put_item", "item must be a table, got %s", type(item))
    end
    check_item(db, item, "batch_writer.put_item")
    local av = encode_item(item, "batch_writer.put_item")
    self._n = self._n + 1
    self._ops[self._n] = { put = item, av = av }
    return true
  end

  --- Queue a delete.
  -- @tparam table key the key attributes
  -- @treturn true
  -- @raise on an invalid key, a closed writer
  function Writer:delete_item(key)
    writer_check(self, "delete_item")
    local db = self._db
    check_key(db, key, "batch_writer.delete_item")
    self._n = self._n + 1
    local k = I.key_of(db, key)
    self._ops[self._n] = { delete = k, av = I.encode_key(db, k, "batch_writer.delete_item") }
    return true
  end

  --- Send every queued operation (chunks of 25, unprocessed ones again).
  -- @treturn true|nil true once every operation was applied
  -- @treturn string message on failure (every operation not known applied
  --   stays queued)
  -- @treturn string code on failure
  -- @raise on a closed writer
  function Writer:flush()
    writer_check(self, "flush")
    local db = self._db
    check_open(db, "batch_writer.flush")
    check_writable(db, "batch_writer.flush")
    local n = self._n
    if n == 0 then return true end
    -- (check_writable above refused a flush from a transaction function)
    -- the last operation on each key wins
    local last, order = {}, {}
    for i = 1, n do
      local op = self._ops[i]
      local id = I.identity(db, op.put or op.delete)
      if not last[id] then order[#order + 1] = id end
      last[id] = op
    end
    local pos = 1
    while pos <= #order do
      local reqs = {}
      for j = pos, math_min(pos + 24, #order) do
        local op = last[order[j]]
        reqs[#reqs + 1] = op.put and { PutRequest = { Item = op.av } }
          or { DeleteRequest = { Key = op.av } }
      end
      pos = pos + #reqs
      local attempt = 0
      local deadline = http.now() + db._client.timeout
      while #reqs > 0 do
        local r, msg, code = I.call(db, "BatchWriteItem", { RequestItems = { [db._table] = reqs } })
        if not r then return nil, I.prefix("batch_writer.flush", msg), code end
        local u = r.UnprocessedItems and r.UnprocessedItems[db._table]
        reqs = u or {}
        if #reqs > 0 then
          if http.now() >= deadline then
            return nil, "dynafile.batch_writer.flush: DynamoDB kept returning unprocessed "
              .. "items (throttled) until the timeout; every operation stays queued", "Throttled"
          end
          attempt = attempt + 1
          I.backoff(db, attempt)
        end
      end
    end
    local ops = self._ops
    self._ops, self._n = {}, 0
    if I.has_listeners(db) then
      local events = {}
      for i = 1, n do
        local op = ops[i]
        events[i] = op.put and { action = "PUT", new = op.put }
          or { action = "DELETE", old = op.delete }
      end
      I.dispatch(db, events)
    end
    return true
  end

  --- Flush and close.
  -- @treturn true|nil as flush
  -- @treturn string message on failure
  -- @treturn string code on failure
  -- @raise when self is not a batch writer
  function Writer:close()
    if getmetatable(self) ~= Writer then writer_check(self, "close") end
    if self._closed then return true end
    local ok, msg, code = self:flush()
    self._ops, self._n, self._closed = {}, 0, true
    if not ok then return nil, msg, code end
    return true
  end

  --- Drop every queued operation and close.
  -- @return nothing
  -- @raise when self is not a batch writer
  function Writer:discard()
    if getmetatable(self) ~= Writer then writer_check(self, "discard") end
    self._ops, self._n, self._closed = {}, 0, true
  end

  --- The number of queued operations.
  -- @treturn integer
  -- @raise never
  function Writer:pending()
    return self._n
  end

  -- `<close>` and collection without an end, as for a local database
  -- (dynafile.errors)
  local watch_writer = errors.writer_class(Writer)

  --- A batch writer: `w:put_item`, `w:delete_item`, `w:flush`, `w:close`
  -- (also `<close>`), `w:discard`, `w:pending`.  A writer collected with
  -- queued writes (never flushed, closed or discarded) says so on stderr,
  -- and the next call on the table raises with that message.
  -- @treturn table the writer
  -- @raise on a closed handle
  function DB:batch_writer()
    check_open(self, "batch_writer")
    return watch_writer(setmetatable({ _db = self, _ops = {}, _n = 0, _closed = false }, Writer))
  end

  --- Run fn(w) with a batch writer and send what it queued.
  -- @tparam function f called with the writer
  -- @treturn true|nil true once everything was applied
  -- @treturn string message on failure
  -- @treturn string code on failure
  -- @raise when f is not a function, f's error (nothing it queued is sent),
  --   a read-only or closed handle
  function DB:batch_write(f)
    check_open(self, "batch_write")
    if type(f) ~= "function" then fail("batch_write", "argument must be a function") end
    check_writable(self, "batch_write")
    local w = self:batch_writer()
    local ok, err = pcall(f, w)
    if not ok then
      w:discard()
      error(err, 0)
    end
    return w:close()
  end

  -- ----------------------------------------------------------- transactions

  -- The reasons of a TransactionCanceledException, one per action.
  local function reasons_of(e, n)
    local out = {}
    local list = e and e.CancellationReasons or {}
    for i = 1, n do
      local r = list[i] or {}
      local code = r.Code or "None"
      if code == "None" then
        out[i] = { code = "None" }
      else
        out[i] = { code = code, message = r.Message or code }
      end
    end
    return out
  end

  -- Commit a list of TransactItems with a token (sent again after a lost
  -- response, applied once).  Returns true, or nil, msg, code, reasons.
  local function commit(db, fn, items)
    if #items > 100 then
      return I.not_supported(fn, "DynamoDB takes at most 100 actions in a transaction")
    end
    local r, msg, code, e = I.call(db, "TransactWriteItems",
      { TransactItems = items, ClientRequestToken = token() }, "idempotent")
    if r then return true end
    if code == "TransactionCanceled" then
      return nil, I.prefix(fn, msg), code, reasons_of(e, #items)
    end
    if code == "NotSupported" then
      return I.not_supported(fn, "the server does not implement TransactWriteItems")
    end
    return nil, I.prefix(fn, msg), code
  end

  local Tx = {}
  Tx.__index = Tx
  Tx.__name = "dynafile.remote.transaction"

  local function tx_check(tx, fn)
    if getmetatable(tx) ~= Tx then
      error(string_format("dynafile.transaction.%s: expected the transaction object (use tx:%s)",
        fn, fn), 3)
    end
    if tx._over then
      error(string_format("dynafile.transaction.%s: the transaction is over", fn), 3)
    end
  end

  -- The state of an item in the transaction: read once (raw image), then
  -- what the transaction's writes made of it.
  local function slot(tx, key)
    local db = tx._db
    local id = I.identity(db, key)
    local s = tx._items[id]
    if s then return s end
    local raw, msg, code = I.read_raw(db, "transaction", key)
    if raw == nil then
      tx._broken = { msg = msg, code = code }
      error(tx._broken, 0)
    end
    local visible = raw
    if raw and I.expired(db, raw) then visible = false end
    s = { key = I.key_of(db, key), raw = raw, cur = visible or nil, id = id }
    tx._items[id] = s
    tx._order[#tx._order + 1] = s
    return s
  end

  local function passed(tx)
    tx._reasons[#tx._reasons + 1] = { code = "None" }
  end

  local function failed(tx, what, code, msg)
    local r = tx._reasons
    r[#r + 1] = { code = code, message = msg }
    if not tx._canceled then tx._canceled = { n = #r, what = what } end
    return nil, msg, code
  end

  local function holds(tx, fn, cond, cur)
    if cond == nil then return true end
    local c, msg = I.compile_condition("transaction." .. fn, cond)
    if not c then
      tx._invalid = tx._invalid or msg
      return nil, msg
    end
    if c.ddb then
      -- the function decides on the outcome before the commit, which is
      -- when the server would evaluate DynamoDB's syntax
      msg = string_format("dynafile.transaction.%s: not supported by the DynamoDB backend: a "
        .. "dynafile.expr condition inside db:transaction(fn) (use a string or a function)", fn)
      tx._unsupported = tx._unsupported or msg
      return nil, msg
    end
    if c.fn then return c.fn(cur) and true or false end
    return expr.eval(c.tree, cur)
  end

  local TX_OPTS = { condition = true, return_old = true }

  --- Read an item inside a transaction (strongly consistent, remembered:
  -- the commit requires it unchanged; the transaction's own writes seen).
  -- @tparam table key the key attributes
  -- @treturn table|nil the item, or nil when missing (or deleted by tx)
  -- @raise on an invalid key, a transaction that has ended
  function Tx:get_item(key)
    tx_check(self, "get_item")
    check_key(self._db, key, "transaction.get_item")
    return slot(self, key).cur
  end

  --- Buffer a put inside a transaction.
  -- @tparam table item the item
  -- @tparam[opt] table opts `condition`, `return_old`
  -- @treturn true|nil true when buffered (false condition: nil)
  -- @treturn table|string the previous item with `return_old`; or the
  --   message when the condition failed
  -- @treturn string code: "ConditionalCheckFailed", "NotSupported"
  -- @raise on an invalid item or option, a transaction that has ended
  function Tx:put_item(item, opts)
    tx_check(self, "put_item")
    local fn = "transaction.put_item"
    opts = check_opts(fn, opts, TX_OPTS)
    if type(item) ~= "table" then fail(fn, "item must be a table, got %s", type(item)) end
    check_item(self._db, item, fn)
    encode_item(item, fn)
    local s = slot(self, item)
    local ok, msg = holds(self, "put_item", opts.condition, s.cur)
    if ok == nil then return nil, msg, self._unsupported and "NotSupported" or "ValidationError" end
    if not ok then
      return failed(self, "put_item", "ConditionalCheckFailed", "the condition failed")
    end
    local prev = s.cur
    s.cur, s.written = update.copy(item), true
    local ev = self._events
    ev[#ev + 1] = { action = "PUT", old = prev, new = s.cur }
    passed(self)
    return true, prev
  end

  --- Buffer a delete inside a transaction.
  -- @tparam table key the key attributes
  -- @tparam[opt] table opts `condition`, `return_old`
  -- @treturn true|nil as put_item
  -- @treturn table|string the deleted item with `return_old`, or a message
  -- @treturn string code, as put_item
  -- @raise as put_item
  function Tx:delete_item(key, opts)
    tx_check(self, "delete_item")
    local fn = "transaction.delete_item"
    opts = check_opts(fn, opts, TX_OPTS)
    check_key(self._db, key, fn)
    local s = slot(self, key)
    local ok, msg = holds(self, "delete_item", opts.condition, s.cur)
    if ok == nil then return nil, msg, self._unsupported and "NotSupported" or "ValidationError" end
    if not ok then
      return failed(self, "delete_item", "ConditionalCheckFailed", "the condition failed")
    end
    local prev = s.cur
    if prev then
      s.cur, s.written = nil, true
      local ev = self._events
      ev[#ev + 1] = { action = "DELETE", old = prev }
    end
    passed(self)
    return true, prev
  end

  --- Buffer an update inside a transaction (applied here to the item as
  -- read, written as a whole item at the commit).
  -- @tparam table key the key attributes
  -- @param changes as for db:update_item
  -- @tparam[opt] table opts `condition`, `return_old`
  -- @treturn table|nil the new item
  -- @treturn table|string the old item with `return_old`, or a message
  -- @treturn string code, as put_item
  -- @raise as put_item, and on changes of key attributes
  function Tx:update_item(key, changes, opts)
    tx_check(self, "update_item")
    local fn = "transaction.update_item"
    opts = check_opts(fn, opts, TX_OPTS)
    local db = self._db
    check_key(db, key, fn)
    local plan, pmsg = update.compile(db, fn, changes)
    if not plan then
      self._invalid = self._invalid or pmsg
      return nil, pmsg, "ValidationError"
    end
    local s = slot(self, key)
    local ok, msg = holds(self, "update_item", opts.condition, s.cur)
    if ok == nil then return nil, msg, self._unsupported and "NotSupported" or "ValidationError" end
    if not ok then
      return failed(self, "update_item", "ConditionalCheckFailed", "the condition failed")
    end
    local kept = opts.return_old and update.copy(s.cur) or nil
    local prev = s.cur
    local new, umsg = update.apply(db, fn, key, s.cur and update.copy(s.cur) or nil, plan)
    if not new then return failed(self, "update_item", "ValidationError", umsg) end
    s.cur, s.written = new, true
    local ev = self._events
    ev[#ev + 1] = { action = "PUT", old = prev, new = update.copy(new) }
    passed(self)
    return update.copy(new), kept
  end

  --- Require a condition on an item at the commit.
  -- @tparam table key the key attributes
  -- @param cond a condition function or an expression string
  -- @treturn true|nil true when it holds now
  -- @treturn string the message when it does not
  -- @treturn string "ConditionalCheckFailed" or "NotSupported"
  -- @raise on an invalid key or condition, a transaction that has ended
  function Tx:condition_check(key, cond)
    tx_check(self, "condition_check")
    local fn = "transaction.condition_check"
    check_key(self._db, key, fn)
    if cond == nil then fail(fn, "condition is required") end
    local s = slot(self, key)
    local ok, msg = holds(self, "condition_check", cond, s.cur)
    if ok == nil then return nil, msg, self._unsupported and "NotSupported" or "ValidationError" end
    if not ok then
      return failed(self, "condition_check", "ConditionalCheckFailed", "the condition failed")
    end
    passed(self)
    return true
  end

  local function pack(...) return { n = select("#", ...), ... } end

  -- The commit of a transaction: every item touched, written or checked
  -- against its image.
  local function tx_items(tx)
    local db = tx._db
    local items = {}
    for _, s in ipairs(tx._order) do
      local b = expr.names()
      local cond = I.image_condition(db, b, s.raw)
      if s.written and s.cur then
        items[#items + 1] = { Put = b:into { TableName = db._table,
          Item = encode_item(s.cur, "transaction"), ConditionExpression = cond } }
      elseif s.written then
        items[#items + 1] = { Delete = b:into { TableName = db._table,
          Key = I.encode_key(db, s.key, "transaction"), ConditionExpression = cond } }
      else
        items[#items + 1] = { ConditionCheck = b:into { TableName = db._table,
          Key = I.encode_key(db, s.key, "transaction"), ConditionExpression = cond } }
      end
    end
    return items
  end

  --- Run fn(tx) optimistically (see the module comment): fn may run more
  -- than once, so it should do nothing but read and write through tx.
  -- @tparam function f called with the transaction object
  -- @return f's return values once the commit was accepted, or as f
  --   returned them when they are nil, err (or false, err: nothing is
  --   written); or nil, message, code ("TransactionCanceled" when the items
  --   kept changing, "NotSupported", a request's code)
  -- @raise f's error (nothing is written), on a read-only or closed handle
  function DB:transaction(f)
    check_open(self, "transaction")
    if type(f) ~= "function" then fail("transaction", "argument must be a function") end
    check_writable(self, "transaction")
    for _ = 1, self._retries do
      local tx = setmetatable({ _db = self, _items = {}, _order = {}, _reasons = {},
        _events = {} }, Tx)
      local res = pack(pcall(I.guarded, self, f, tx))
      tx._over = true
      if tx._broken then return nil, tx._broken.msg, tx._broken.code end
      if not res[1] then error(res[2], 0) end
      -- nil, err (or false, err): fn failed, nothing is written
      if not res[2] and res[3] ~= nil then return unpack(res, 2, res.n) end
      if tx._unsupported then return nil, tx._unsupported, "NotSupported" end
      if tx._invalid then return nil, tx._invalid, "ValidationError" end
      local c = tx._canceled
      if c then
        local r = tx._reasons[c.n]
        return nil, string_format("dynafile.transaction: transaction canceled: action %d (%s): %s",
          c.n, c.what, r.message), "TransactionCanceled", tx._reasons
      end
      local items = tx_items(tx)
      local written = false
      for _, s in ipairs(tx._order) do if s.written then written = true end end
      local ok, msg, code = true, nil, nil
      if written or #items > 1 then ok, msg, code = commit(self, "transaction", items) end
      if ok then
        -- one event per action, in order, as a local transaction gives
        if I.has_listeners(self) then I.dispatch(self, tx._events) end
        return unpack(res, 2, res.n)
      end
      if code ~= "TransactionCanceled" then return nil, msg, code end
      -- an item changed since it was read: run fn again
    end
    return nil, "dynafile.transaction: the items kept changing under the optimistic check",
      "TransactionCanceled"
  end

  local ACTION_FIELDS = {
    put = { put = true, condition = true },
    delete = { delete = true, condition = true },
    update = { update = true, changes = true, condition = true },
    check = { check = true, condition = true },
  }
  local ACTION_KINDS = { "put", "delete", "update", "check" }

  --- DynamoDB's TransactWriteItems (see the local one).  Condition
  -- functions, update functions and list add/delete run here on the item
  -- read, which the commit then requires unchanged.
  -- @tparam table actions a list of `{put = item}`, `{delete = key}`,
  --   `{update = key, changes = ...}`, `{check = key, condition = ...}`,
  --   each with an optional `condition`
  -- @treturn true|nil true when every action was applied
  -- @treturn string message on failure
  -- @treturn string code on failure: "TransactionCanceled" (details:
  --   one reason per action, in order), "NotSupported", a request's code
  -- @treturn table the reasons, with "TransactionCanceled"
  -- @raise on an invalid action, a read-only or closed handle
  function DB:transact_write_items(actions)
    local fn = "transact_write_items"
    check_open(self, fn)
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
      if kind == "put" then
        check_item(self, a.put, where)
        encode_item(a.put, where)
      else
        check_key(self, a[kind], where)
      end
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
        local msg
        cond, msg = I.compile_condition(where, a.condition)
        if not cond then return nil, msg, "ValidationError" end
      end
      local id = I.identity(self, a[kind])
      if seen[id] then
        return nil, string_format("dynafile.%s: actions[%d] and actions[%d] name the same item "
          .. "(one action per item)", fn, seen[id], i), "ValidationError"
      end
      seen[id] = i
      list[i] = { kind = kind, target = a[kind], plan = plan, cond = cond, changes = a.changes }
    end
    local ttl = self._ttl_attr or self._ttl_fn
    for _ = 1, self._retries do
      local items, reads, events, raws = {}, {}, {}, {}
      local failed_at
      local reasons = {}
      for i, a in ipairs(list) do
        local b = expr.names()
        local key = I.key_of(self, a.target)
        local here = ttl or (a.cond and (a.cond.fn or not a.cond.server))
          or (a.kind == "update" and (type(a.plan) == "function"
            or not I.plan_expression(self, a.plan, expr.names(), fn, a.changes)))
          or I.has_listeners(self)
        local item
        if here then
          local raw, msg, code = I.read_raw(self, fn, key)
          if raw == nil then return nil, msg, code end
          reads[i] = true
          local visible = raw
          if raw and I.expired(self, raw) then visible = false end
          local ok = true
          raws[i] = raw
          if a.cond and not a.cond.ddb then
            if a.cond.fn then
              ok = I.guarded(self, a.cond.fn, visible or nil)
            else
              ok = expr.eval(a.cond.tree, visible or nil)
            end
          end
          if not ok then
            reasons[i] = { code = "ConditionalCheckFailed", message = "the condition failed" }
            failed_at = failed_at or i
          else
            reasons[i] = { code = "None" }
          end
          local cond = I.image_condition(self, b, raw)
          if a.cond and a.cond.ddb then
            cond = "(" .. cond .. ") AND (" .. b:embed(a.cond.ddb, fn) .. ")"
          end
          if a.kind == "put" then
            item = { Put = { TableName = self._table, Item = encode_item(a.target, fn),
              ConditionExpression = cond } }
            events[#events + 1] = { action = "PUT", old = visible or nil, new = a.target }
          elseif a.kind == "delete" then
            item = { Delete = { TableName = self._table, Key = I.encode_key(self, key, fn),
              ConditionExpression = cond } }
            if visible then events[#events + 1] = { action = "DELETE", old = visible } end
          elseif a.kind == "check" then
            item = { ConditionCheck = { TableName = self._table,
              Key = I.encode_key(self, key, fn), ConditionExpression = cond } }
          else
            local new, umsg = I.guarded(self, update.apply, self, fn, key,
              visible and update.copy(visible) or nil, a.plan)
            if not new then
              reasons[i] = { code = "ValidationError", message = umsg }
              failed_at = failed_at or i
              new = visible or key
            end
            item = { Put = { TableName = self._table, Item = encode_item(new, fn),
              ConditionExpression = cond } }
            events[#events + 1] = { action = "PUT", old = visible or nil, new = new }
          end
          for _, v in pairs(item) do b:into(v) end
        else
          local cond = a.cond and (a.cond.ddb and b:embed(a.cond.ddb, fn)
            or expr.translate(a.cond.tree, b, fn))
          if a.kind == "put" then
            item = { Put = { TableName = self._table, Item = encode_item(a.target, fn),
              ConditionExpression = cond } }
          elseif a.kind == "delete" then
            item = { Delete = { TableName = self._table, Key = I.encode_key(self, key, fn),
              ConditionExpression = cond } }
          elseif a.kind == "check" then
            item = { ConditionCheck = { TableName = self._table,
              Key = I.encode_key(self, key, fn), ConditionExpression = cond } }
          else
            local ue = I.plan_expression(self, a.plan, b, fn, a.changes)
            item = { Update = { TableName = self._table, Key = I.encode_key(self, key, fn),
              UpdateExpression = ue ~= "" and ue or nil, ConditionExpression = cond } }
          end
          for _, v in pairs(item) do b:into(v) end
        end
        items[i] = item
      end
      if failed_at then
        for i = 1, #list do reasons[i] = reasons[i] or { code = "None" } end
        return nil, string_format("dynafile.%s: transaction canceled: actions[%d] (%s): %s", fn,
          failed_at, list[failed_at].kind, reasons[failed_at].message), "TransactionCanceled",
          reasons
      end
      local ok, msg, code, rs = commit(self, fn, items)
      if ok then
        if I.has_listeners(self) then I.dispatch(self, events) end
        return true
      end
      if code ~= "TransactionCanceled" then return nil, msg, code end
      -- canceled: by a condition of the caller's, or by an image read here
      -- that changed since (then run again)
      local again = false
      for i, r in ipairs(rs) do
        if r.code == "ConditionalCheckFailed" and reads[i] then
          -- the item changed since it was read (run again), unless it is as
          -- read and the action's dynafile.expr condition was false
          local user = list[i].cond and list[i].cond.ddb
          local now_raw = user and I.read_raw(self, fn, I.key_of(self, list[i].target))
          if not (user and now_raw ~= nil and (now_raw == raws[i]
              or (now_raw and raws[i] and expr.deep_equal(now_raw, raws[i])))) then
            again = true
          end
        end
        if r.code == "TransactionConflict" then again = true end
      end
      if not again then
        local first
        for i, r in ipairs(rs) do
          if r.code ~= "None" then first = first or i end
          if r.code == "ConditionalCheckFailed" then r.message = "the condition failed" end
        end
        return nil, string_format("dynafile.%s: transaction canceled: actions[%d] (%s): %s", fn,
          first or 1, list[first or 1].kind, rs[first or 1].message or "canceled"),
          "TransactionCanceled", rs
      end
      I.backoff(self, 1)
    end
    return nil, "dynafile.transact_write_items: the items kept changing under the optimistic "
      .. "check", "TransactionCanceled"
  end
end
