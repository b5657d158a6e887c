--- dynafile.db: the database handle, every method of it in one place.
--
-- Single-item writes and reads are here; queries and scans are
-- dynafile.reader's, batches and transactions dynafile.batch's, and the
-- shared machinery (the write runner, TTL, conditions, listeners)
-- dynafile.handle's.  The handles come from `dynafile.open`.
--
-- Invariant: every write goes through the binding's one-call forms (one
-- core transaction, when no Lua code must run inside it) or through the
-- write runner; a failed call leaves the database as it was.
-- @module dynafile.db

local core = require "dynafile.core"
local errors = require "dynafile.errors"
local handle = require "dynafile.handle"
local listeners = require "dynafile.listeners"
local update = require "dynafile.update"

local type, pcall = type, pcall
-- The handle checks read the metatable raw: DB sets no __metatable, and
-- PUC Lua's getmetatable looks for one on every call (LuaJIT's is a fast
-- function its compiler records: kept there).
local getmetatable = rawget(_G, "jit") == nil and debug and debug.getmetatable
  or getmetatable
local error, string_format = error, string.format
local math_floor = math.floor

local fail, failed, options = errors.fail, errors.failed, errors.options

-- The binding's single-item methods, called straight: no method lookup
-- on the handle's userdata on the hot path of put_item and get_item.
local c_put_item, c_get_item = core.db_methods.put_item, core.db_methods.get_item

-- dynafile.reader (queries and scans) and dynafile.batch (batch writers
-- and transactions) are loaded at their first use: a program of
-- single-item calls never compiles them (lazy.reader, lazy.batch).
local lazy = setmetatable({}, { __index = function(t, name)
  local m = require("dynafile." .. name)
  t[name] = m
  return m
end })
local check_open, now, is_expired = handle.check_open, handle.now, handle.is_expired
local current, has_listeners = handle.current, handle.has_listeners
local compile_condition, condition_holds = handle.compile_condition, handle.condition_holds
local cond_failed, key_of = handle.cond_failed, handle.key_of

local DB = handle.DB
local M = { DB = DB }

-- ------------------------------------------------------------- writes

--- A database handle, from `dynafile.open`.  Call its methods as
-- `db:put_item(...)`; every method raises once the handle is closed.
-- @type db

local PUT_OPTS = { condition = true, return_old = true }

-- The results of put_item and delete_item: true [, old] or nil, msg, code.
local function written(return_old, ok, old_or_msg, code)
  if not ok then return nil, old_or_msg, code end
  if return_old then return true, old_or_msg end
  return true
end

local function put_body(self, txn, t, item, cond, return_old)
  local fn = "put_item"
  if cond or self._ttl_fn then
    local old, msg, code = current(self, fn, txn, item, t)
    if msg then return nil, msg, code end
    if cond then
      local holds
      holds, msg, code = condition_holds(self, fn, txn, item, cond, old)
      if msg then return nil, msg, code end
      if not holds then return cond_failed(fn) end
    end
  end
  local ok, prev, code, misuse
  if return_old then
    ok, prev, code, misuse = txn:put_return_old(item)
  else
    ok, prev, code, misuse = txn:put(item)
  end
  if not ok then return failed(fn, prev, code, misuse) end
  return true, prev
end

--- Write an item, replacing any item with the same key.
-- @tparam table item the item, holding the key attributes
-- @tparam[opt] table opts `condition` (a function `(old_or_nil) -> bool`
--   or an expression string evaluated against the current item),
--   `return_old` (boolean)
-- @treturn true|nil true on success
-- @treturn table|string the previous item with `return_old` (nil when there
--   was none), or the message on failure
-- @treturn string code on failure: "ConditionalCheckFailed",
--   "ValidationError" (a condition string that does not parse), "IOError"
-- @raise on misuse: an invalid item (a missing or non-key key attribute, a
--   key too long, a function value, a cycle, nesting deeper than 32) or
--   option, a condition that is neither a function nor a string, a closed
--   or read-only handle, a write from inside one of this database's own
--   transactions or update functions
function DB:put_item(item, opts)
  -- (the binding reports a closed handle, with check_open's message)
  local h = getmetatable(self) == DB and not self._st.lost_writes and self._c
  if h and opts == nil and not self._ttl_fn and #self._st.listeners == 0 then
    local t
    if self._timed then t = now(self) end
    local ok, msg, code, misuse = c_put_item(h, item, t)
    if ok then return ok end
    return failed("put_item", msg, code, misuse)
  end
  check_open(self, "put_item")
  opts = options("put_item", opts, PUT_OPTS)
  if type(item) ~= "table" then fail("put_item", "item must be a table, got %s", type(item)) end
  local cond, msg
  if opts.condition ~= nil then
    cond, msg = compile_condition("put_item", opts.condition)
    if not cond then return nil, msg, "ValidationError" end
  end
  return written(opts.return_old, handle.write(self, "put_item", put_body, item, cond,
    opts.return_old and true or false))
end

local DELETE_OPTS = PUT_OPTS

local function delete_body(self, txn, t, key, cond, return_old)
  local fn = "delete_item"
  local old, msg, code = current(self, fn, txn, key, t)
  if msg then return nil, msg, code end
  if cond then
    local holds
    holds, msg, code = condition_holds(self, fn, txn, key, cond, old)
    if msg then return nil, msg, code end
    if not holds then return cond_failed(fn) end
  end
  if not old then return true, nil end
  local found, prev, misuse
  if return_old then
    found, prev, code, misuse = txn:delete_return_old(key)
  else
    found, prev, code, misuse = txn:delete(key)
  end
  if found == nil then return failed(fn, prev, code, misuse) end
  return true, prev
end

--- Delete the item with `key`.  Deleting a missing item is not an error
-- and fires no event.
-- @tparam table key the key attributes
-- @tparam[opt] table opts `condition`, `return_old`, as for put_item
-- @treturn true|nil true on success
-- @treturn table|string the deleted item with `return_old` (nil when there
--   was none), or the message on failure
-- @treturn string code on failure: "ConditionalCheckFailed",
--   "ValidationError", "IOError"
-- @raise on misuse: an invalid key or option, a condition that is neither
--   a function nor a string, a closed or read-only handle, a write from
--   inside one of this database's own transactions or update functions
function DB:delete_item(key, opts)
  check_open(self, "delete_item")
  if opts == nil and not self._ttl_fn and not has_listeners(self) then
    local ok, msg, code, misuse = self._c:delete_item(key, now(self))
    if ok then return ok end
    return failed("delete_item", msg, code, misuse)
  end
  opts = options("delete_item", opts, DELETE_OPTS)
  local ok, kmsg, kcode, kmisuse = self._c:check_key(key)
  if not ok then failed("delete_item", kmsg, kcode, kmisuse) end
  local cond, msg
  if opts.condition ~= nil then
    cond, msg = compile_condition("delete_item", opts.condition)
    if not cond then return nil, msg, "ValidationError" end
  end
  return written(opts.return_old, handle.write(self, "delete_item", delete_body, key, cond,
    opts.return_old and true or false))
end

local UPDATE_OPTS = { condition = true, return_old = true }

local function update_body(self, txn, t, key, plan, cond, return_old)
  local fn = "update_item"
  -- the item as a Lua table only for Lua code (an update or condition
  -- function, a TTL function): the C engine reads the stored bytes
  local old, msg, code
  if type(plan) == "function" or type(cond) == "function" or self._ttl_fn then
    old, msg, code = current(self, fn, txn, key, t)
    if msg then return nil, msg, code end
  end
  if cond then
    local holds
    holds, msg, code = condition_holds(self, fn, txn, key, cond, old)
    if msg then return nil, msg, code end
    if not holds then return cond_failed(fn) end
  end
  return update.run(self, fn, txn, key, old, plan, return_old)
end

--- Update (or create) the item with `key`.
--
-- `changes` is a table `{set = {path = value}, remove = {path, ...},
-- add = {path = number_or_list}, delete = {path = list}}`: paths are
-- `a.b[0].c` (names and 0-based list positions) and all refer to the item
-- as it was, so they may not overlap; `set` creates missing maps on the
-- way and appends when a list position is past the end; `add` adds to a
-- number (an integer sum that overflows is refused), appends missing
-- values to a list, and sets a missing attribute; `delete` removes values
-- from a list; `remove` drops attributes and list positions.
-- Or `changes` is a `dynafile.expr` UpdateExpression in DynamoDB's syntax
-- (`SET a = a + :one REMOVE b`, with its names and values).  Both are
-- applied in C to the stored bytes: attributes not named keep their
-- exact bytes.
-- Or `changes` is `function(old_or_nil) return new_item end`, run inside
-- the write transaction (it may read the database, not write it); key
-- attributes left out of the new item are filled in from `key`.
-- @tparam table key the key attributes
-- @tparam table|function changes the changes, as above
-- @tparam[opt] table opts condition (function or expression string),
--   return_old (boolean)
-- @treturn table|nil the new item
-- @treturn table|string the old item (or nil) with return_old, or the message
-- @treturn string code on failure: "ConditionalCheckFailed";
--   "ValidationError" when the changes do not fit the stored item (a path
--   through a value of another type, `add` to a string, an overflow) or
--   a condition string does not parse
-- @raise on misuse: an invalid key, changes or option, a key attribute in
--   a path, overlapping paths, an update function changing the key, a
--   closed or read-only handle, a write from inside one of this database's
--   own transactions; and whatever the update function raises (the item
--   is then left as it was)
function DB:update_item(key, changes, opts)
  check_open(self, "update_item")
  opts = options("update_item", opts, UPDATE_OPTS)
  local ok, kmsg, kcode, kmisuse = self._c:check_key(key)
  if not ok then failed("update_item", kmsg, kcode, kmisuse) end
  local plan, pmsg = update.compile(self, "update_item", changes)
  if not plan then return nil, pmsg, "ValidationError" end
  local cond, msg
  if opts.condition ~= nil then
    cond, msg = compile_condition("update_item", opts.condition)
    if not cond then return nil, msg, "ValidationError" end
  end
  local new, old, code = handle.write(self, "update_item", update_body, key, plan, cond,
    opts.return_old and true or false)
  if new == nil then return nil, old, code end
  if opts.return_old then return new, old end
  return new
end

-- ------------------------------------------------------------- reads

local GET_OPTS = { projection = true }

-- get_item with options: a projection, applied after the TTL function
-- (which judges the whole item).
local function get_projected(self, key, opts)
  local fn = "get_item"
  opts = options(fn, opts, GET_OPTS)
  local pr
  if opts.projection ~= nil then
    local msg
    pr, msg = handle.projection(fn, opts.projection)
    if not pr then return nil, msg, "ValidationError" end
  end
  local t = now(self)
  local ttl_fn = self._ttl_fn
  local item, msg, code, misuse = self._c:get_item(key, t, not ttl_fn and pr or nil)
  if msg then return failed(fn, msg, code, misuse) end
  if item and ttl_fn then
    if is_expired(self, item, t) then return nil end
    if pr then return pr:apply(item) end
  end
  return item
end

--- Read the item with `key`.
-- @tparam table key the key attributes (other attributes are ignored)
-- @tparam[opt] table opts `projection`: a list of paths or a
--   `dynafile.expr` ProjectionExpression; only those paths come back
-- @treturn table|nil the item, or nil when missing or expired
-- @treturn string message, on an I/O failure only, or for a projection
--   that does not compile
-- @treturn string code, on an I/O failure only ("IOError", "Corrupt", ...)
--   or "ValidationError"
-- @raise on an invalid key (missing attribute, wrong type, too long), an
--   invalid option or a closed handle
function DB:get_item(key, opts)
  local h = getmetatable(self) == DB and not self._st.lost_writes and self._c
  if not h then check_open(self, "get_item") end
  if opts ~= nil then return get_projected(self, key, opts) end
  if not self._timed then
    local item, msg, code, misuse = c_get_item(h, key)
    if msg == nil then return item end
    return failed("get_item", msg, code, misuse)
  end
  local t = now(self)
  local item, msg, code, misuse = h:get_item(key, t)
  if msg then return failed("get_item", msg, code, misuse) end
  if item and self._ttl_fn and is_expired(self, item, t) then return nil end
  return item
end

--- Read several items in one consistent snapshot.
-- @tparam table keys a list of key tables
-- @tparam[opt] table opts `projection`: a list of paths or a
--   `dynafile.expr` ProjectionExpression, as get_item takes it
-- @treturn table|nil one entry per key, in order: the item or false when
--   missing or expired
-- @treturn string message on failure
-- @treturn string code on failure
-- @raise on an invalid key or option, or a closed handle
function DB:batch_get_item(keys, opts)
  local fn = "batch_get_item"
  check_open(self, fn)
  if type(keys) ~= "table" then fail(fn, "keys must be a list of keys") end
  local pr
  if opts ~= nil then
    opts = options(fn, opts, GET_OPTS)
    if opts.projection ~= nil then
      local msg
      pr, msg = handle.projection(fn, opts.projection)
      if not pr then return nil, msg, "ValidationError" end
    end
  end
  local c = self._c
  local n = #keys
  for i = 1, n do
    if type(keys[i]) ~= "table" then
      fail(fn, "keys[%d] must be a key table, got %s", i, type(keys[i]))
    end
    local ok, msg, code, misuse = c:check_key(keys[i])
    if not ok then failed(fn, msg, code, misuse) end
  end
  local t = now(self)
  local txn, msg, code, misuse = c:read_txn(t)
  if not txn then return failed(fn, msg, code, misuse) end
  local out = {}
  -- a TTL function judges whole items: project after it
  local in_txn = not self._ttl_fn and pr or nil
  local ok, err, ecode, emisuse = pcall(function()
    for i = 1, n do
      local item, gmsg, gcode, gmisuse = txn:get(keys[i], in_txn)
      if gmsg then return gmsg, gcode, gmisuse end
      out[i] = item or false
    end
  end)
  txn:free()
  if not ok then error(err, 0) end
  if err then return failed(fn, err, ecode, emisuse) end
  -- the TTL function runs after the read transaction ended: it may yield
  -- (and other coroutines write, the map grow) without pinning a snapshot
  if self._ttl_fn then
    for i = 1, n do
      if out[i] and is_expired(self, out[i], t) then out[i] = false end
      if out[i] and pr then out[i] = pr:apply(out[i]) end
    end
  end
  return out
end

--- Iterate over the items of partition `pk` in sort-key order.
-- Reads in pages of short read transactions, so the loop may write to the
-- database and may break early.
--
-- Options: one key condition on the sort key (`begins_with`, `eq`, `lt`,
-- `le`, `gt`, `ge`, or `between = {lo, hi}`); `starts_with = v` (start at
-- sort key v, inclusive, in the direction of travel);
-- `scan_index_forward = false` (descending); `index` (query a GSI, `pk`
-- being the index's partition-key value, or an LSI); `filter` (a function
-- `(item) -> bool` or an expression string evaluated in C on the stored
-- bytes); `limit` (at most n items, counted after the filter);
-- `start_after` (a key table: resume after it); `stats` (a table that
-- receives `examined`: entries visited in the B+tree, `decoded`: items
-- turned into Lua tables, `pages`: read transactions -- to see what a query
-- costs).
-- @param pk partition-key value, a string or a number (of the table, or of
--   `opts.index`)
-- @tparam[opt] table opts the options above
-- @return a generic-for iterator yielding items (plus a closing value, so
--   `break` releases it at once on Lua 5.4)
-- @raise on invalid options, an unknown index, a filter string that does
--   not parse, a closed handle; and whatever a filter function raises
-- @usage for order in db:query("customer#1", {begins_with = "order#"}) do
--   print(order.SK, order.total)
-- end
function DB:query(pk, opts)
  return lazy.reader.iterate(self, "query", pk, opts, false)
end

--- Iterate over every item (of the table, or of `opts.index`), in key
-- order (partitions in hash order).
-- @tparam[opt] table opts `filter`, `limit`, `start_after`, `index`,
--   `stats` (as for query), and `segment = k, segments = n` (k in 1..n)
--   for one of n disjoint parts of a parallel scan
-- @return a generic-for iterator yielding items
-- @raise on invalid options, an unknown index, a filter string that does
--   not parse, a closed handle; and whatever a filter function raises
function DB:scan(opts)
  return lazy.reader.iterate(self, "scan", nil, opts, true)
end

--- One page of a query: up to `opts.limit` (default 100) items.
-- @param pk partition-key value, as for query
-- @tparam[opt] table opts as for query
-- @treturn table|nil the items (a list)
-- @treturn table|string `next_key`: nil when nothing remains, else a key
--   table to pass back as `opts.start_after` (a page may be empty while
--   `next_key` is not); or the message of a filter string that does not
--   parse
-- @treturn string "ValidationError" when the filter string does not parse
-- @raise on invalid options (other than the filter string), a closed
--   handle; and whatever a filter function raises
function DB:query_page(pk, opts)
  return lazy.reader.page(self, "query_page", pk, opts, false)
end

--- One page of a scan: up to `opts.limit` (default 100) items.
-- @tparam[opt] table opts as for scan
-- @treturn table|nil the items (a list)
-- @treturn table|string `next_key`, as for `query_page`; or the message
-- @treturn string "ValidationError" when the filter string does not parse
-- @raise on invalid options (other than the filter string), a closed
--   handle; and whatever a filter function raises
function DB:scan_page(opts)
  return lazy.reader.page(self, "scan_page", nil, opts, true)
end

-- For `dynafile serve` only (not part of the API): query_page and
-- scan_page with the items as DynamoDB JSON text (dynafile.reader's
-- page_json), and get_item as DynamoDB JSON with the item's DynamoDB size
-- (json, size), or the item as a table when one of its values needs the
-- Lua path (item, nil), or false when there is none.
function DB:_query_page_json(pk, opts, budget, want_last)
  return lazy.reader.page_json(self, "query_page", pk, opts, false, budget, want_last)
end

function DB:_scan_page_json(opts, budget, want_last)
  return lazy.reader.page_json(self, "scan_page", nil, opts, true, budget, want_last)
end

function DB:_get_item_json(key)
  local h = getmetatable(self) == DB and not self._st.lost_writes and self._c
  if not h then check_open(self, "get_item") end
  if self._ttl_fn then
    local item, msg, code = self:get_item(key)
    if item == nil and msg ~= nil then return nil, msg, code end
    return item or false, nil
  end
  local a, b, code, misuse = h:get_item_json(key, self._timed and now(self) or nil)
  if a == nil then return failed("get_item", b, code, misuse) end
  return a, b
end

-- ----------------------------------------------- batches, transactions

--- A batch writer: `w:put_item` and `w:delete_item` queue operations,
-- `w:flush` commits them all in one transaction.  On Lua 5.4, `local w
-- <close> = db:batch_writer()` commits when the scope ends normally
-- (raising if that commit fails) and discards when it ends by an error.
-- @treturn batch_writer the writer
-- @raise when the database is closed
-- @usage local w <close> = db:batch_writer()
-- for _, e in ipairs(entities) do w:put_item(e) end
function DB:batch_writer()
  check_open(self, "batch_writer")
  return lazy.batch.writer(self)
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
  check_open(self, "batch_write")
  return lazy.batch.batch_write(self, fn)
end

--- Run fn(tx) with the write transaction held: all or nothing.
-- `tx:get_item`, `tx:put_item`, `tx:delete_item`, `tx:update_item`,
-- `tx:condition_check(key, c)` work as the db methods do, inside the
-- transaction (reads see its writes).  Every action that fails (its
-- condition, or an update that does not fit the item) cancels the
-- transaction; fn goes on running and may look at what the actions
-- returned.  fn may run again, from the start, when the database had to
-- grow.  Writes through the db itself (not tx) raise inside fn.
--
-- What fn returns decides: values commit and are returned; `nil, err`
-- (or `false, err`: a nil or false first value and a second value that is
-- not nil, the Lua convention for a failure) rolls back and is returned
-- as fn returned it; an error raised rolls back and is raised again.
-- Returning nothing, or nil alone, commits.
-- @tparam function fn called as fn(tx)
-- @return fn's return values (after the commit, or after the rollback
--   when they are nil, err); or nil, message, "TransactionCanceled",
--   reasons (one `{code = "None"}`, `{code = "ConditionalCheckFailed",
--   message = ...}` or `{code = "ValidationError", message = ...}` per
--   action, in order); or nil, message, "ValidationError" when a
--   condition string did not parse; or nil, message, code on an I/O
--   failure
-- @raise when fn is not a function, the database is closed or read-only,
--   a transaction of this database is already held here; and whatever
--   fn raises, after rolling back
function DB:transaction(fn)
  check_open(self, "transaction")
  return lazy.batch.transaction(self, fn)
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
  check_open(self, "transact_write_items")
  return lazy.batch.transact_write_items(self, actions)
end

-- ------------------------------------------------------------- TTL

local function purge_body(self, txn, t, limit, keys)
  local fn = "purge_expired"
  local n = 0
  if keys then
    -- the items were found expired in an earlier read: check again inside
    -- the write transaction, so an item written since is kept
    for i = 1, #keys do
      local item, msg, code, misuse = txn:get(keys[i])
      if msg then return failed(fn, msg, code, misuse) end
      if item and is_expired(self, item, t) then
        local found
        found, msg, code, misuse = txn:delete_expired(keys[i])
        if found == nil then return failed(fn, msg, code, misuse) end
        n = n + 1
      end
    end
    return n
  end
  local count, msg, code, misuse = txn:purge_expired(limit or 0)
  if not count then return failed(fn, msg, code, misuse) end
  return count
end

--- Delete expired items now, each with a DELETE event marked
-- `expired = true`.  Expired items are already invisible to reads; writes
-- also delete a few of them as they go.
-- @tparam[opt] integer limit at most this many
-- @treturn integer|nil how many were deleted (0 without TTL)
-- @treturn string message on failure
-- @treturn string code on failure ("IOError", ...)
-- @raise on a limit that is not a positive integer, a closed or read-only
--   handle; and whatever a TTL function raises
function DB:purge_expired(limit)
  local fn = "purge_expired"
  check_open(self, fn)
  if limit ~= nil then lazy.reader.positive_int(fn, "limit", limit) end
  local keys
  if self._ttl_fn then
    -- find the expired items in pages, running the TTL function outside
    -- any transaction, then delete them in one write transaction
    local t = now(self)
    local spec = { now = t }
    local nk
    keys = {}
    repeat
      spec.start_after, spec.max = nk, lazy.reader.PAGE
      local items, code, misuse
      items, nk, code, misuse = self._c:page(spec)
      if not items then return failed(fn, nk, code, misuse) end
      for i = 1, #items do
        if self._ttl_fn(items[i], t) then
          keys[#keys + 1] = key_of(self, items[i])
          if limit and #keys >= limit then nk = nil break end
        end
      end
    until nk == nil
  elseif not self._c:schema().ttl then
    -- (the schema in force: another handle may have set the attribute)
    keys = {}
  end
  local n, msg, code = handle.purge(self, fn, purge_body, limit, keys)
  if n == nil then return nil, msg, code end
  return n
end

-- ------------------------------------------------------------- listeners

--- Register a listener for every change committed to this database from
-- this process, through any of its handles.
--
-- A listener is called after the commit, before the write call returns,
-- once per changed item, in commit order (a batch that puts then deletes
-- one key gives PUT then DELETE), with the event
-- `{action = "PUT"|"DELETE", old = item|nil, new = item|nil,
-- expired = true|nil}`.  It may read the database and may write to it:
-- such a write is a new commit with its own events, delivered to every
-- listener after the events of the commit being delivered (so each
-- listener still sees commits in order), before the outer write returns.
--
-- A listener that raises does not undo the commit and does not stop the
-- other listeners.  The error is reported, never swallowed: to the
-- `listener_error` function given to `dynafile.open` for the handle that
-- made the write, called as `listener_error(err, event)`; without one (or
-- when that function raises too) as a line
-- `dynafile: stream listener error: <err>` on stderr.
--
-- Listeners are dropped when the last handle of the database closes.
-- @tparam function fn the listener, called as fn(event)
-- @return a handle for `remove_stream_listener`
-- @raise when fn is not a function or the handle is closed
function DB:add_stream_listener(fn)
  check_open(self, "add_stream_listener")
  if type(fn) ~= "function" then fail("add_stream_listener", "listener must be a function") end
  return listeners.add(self._st, fn)
end

--- Remove a listener.  Events already being delivered when it is removed
-- may still reach it.
-- @param h the handle add_stream_listener returned
-- @treturn boolean true when it was registered
-- @raise when the handle is closed
function DB:remove_stream_listener(h)
  check_open(self, "remove_stream_listener")
  return listeners.remove(self._st, h)
end

--- Deliver to this database's listeners the changes that other
-- processes (and other Lua states) committed since the last poll -- or,
-- at the first poll, since the database was opened in this Lua state --
-- in commit order, each event carrying its `seq` (and `time`).  Changes
-- committed from this Lua state are not delivered again: the listeners
-- heard them at commit.  Reads the change log, so the log must be on
-- (the `stream` option of `dynafile.open`); when it is off there is
-- nothing to deliver.  This is how an OpenResty worker hears the writes
-- of the other workers: poll before serving from a cache.
-- @treturn integer|nil how many events were delivered
-- @treturn integer|string how many changes were trimmed from the log
--   (retention) before this Lua state read them: when not 0, some changes
--   were missed and a cache should be dropped whole; or the message
-- @treturn string code on failure ("ReadersFull", "IOError", ...)
-- @raise when the handle is closed
function DB:poll_stream()
  local fn = "poll_stream"
  check_open(self, fn)
  local h, st = self._c, self._st
  local delivered, missed = 0, 0
  if not st.stream_seq then
    local ok, last, code, misuse = h:stream_read(-1)
    if not ok then return failed(fn, last, code, misuse) end
    st.stream_seq = last
    return 0, 0
  end
  while true do
    local after = st.stream_seq
    local events, nxt, first, misuse = h:stream_read(after, 256)
    if not events then return failed(fn, nxt, first, misuse) end
    if first > after + 1 then missed = missed + (first - after - 1) end
    st.stream_seq = nxt
    if #events > 0 then
      delivered = delivered + #events
      handle.dispatch(self, events)
    end
    if nxt == after then break end
  end
  return delivered, missed
end

--- Read the change log directly: the records after sequence number
-- `after`, oldest first, of every writer -- this Lua state's too, unlike
-- `poll_stream`, which delivers to listeners what they did not hear.
-- Each record is an event (`action`, `old`, `new`, `expired`) with its
-- `seq` and commit `time`.  The log must be on (the `stream` option of
-- `dynafile.open`).
-- @tparam[opt] integer after read the records after this sequence number
--   (default 0: from the oldest kept)
-- @tparam[opt] integer max at most this many records (default 256)
-- @treturn table|nil the records
-- @treturn integer|string the sequence number to pass as `after` next
--   time; or the message
-- @treturn integer|string the oldest sequence number the log still holds
--   (a record before it was trimmed); or the code ("ReadersFull", ...)
-- @treturn integer the newest sequence number in the log
-- @raise on an `after` or `max` that is not a non-negative or positive
--   integer, or a closed handle
function DB:read_stream(after, max)
  local fn = "read_stream"
  check_open(self, fn)
  if after == nil then after = 0 end
  if type(after) ~= "number" or after < 0 or after ~= math_floor(after) then
    fail(fn, "after must be a non-negative integer")
  end
  if max == nil then max = 256 end
  lazy.reader.positive_int(fn, "max", max)
  local records, nxt, first, last = self._c:stream_read_all(after, max)
  if not records then return failed(fn, nxt, first, last) end
  return records, nxt, first, last
end

-- ------------------------------------------------------------- closing

--- Close the handle.  Further calls on it raise.  Closing twice is fine;
-- `<close>` and the garbage collector close it too.
-- @treturn true always
-- @raise nothing
function DB:close()
  local h = self._c
  if h and not h:closed() then h:close() end
  handle.release(self)
  return true
end

DB.__close = DB.close
DB.__gc = DB.close

function DB:__tostring()
  return string_format("dynafile.db(%s)%s", self._path, self._c:closed() and " closed" or "")
end

--- The schema in force.
-- @treturn table `{pk = name, sk = name|nil, ttl = name|nil, indexes =
--   {name = definition}}`
-- @raise when the handle is closed
function DB:schema()
  check_open(self, "schema")
  return self._c:schema()
end

--- Drop a secondary index: delete its entries and remove it from the
-- stored schema, in one transaction.  Other handles and processes stop
-- maintaining it at their next write.  Querying it afterwards raises.
-- @tparam string name the index name
-- @treturn true|nil
-- @treturn string message on failure
-- @treturn string code on failure ("ReadOnly", "IOError", ...)
-- @raise when no index has that name, or on a closed handle
function DB:drop_index(name)
  local fn = "drop_index"
  check_open(self, fn)
  if type(name) ~= "string" then
    fail(fn, "name must be an index name, got %s", type(name))
  end
  local ok, msg, code = self._c:drop_index(name)
  if not ok then
    if code == "NotFound" then fail(fn, "name: %s", msg) end
    return nil, string_format("dynafile.%s: %s", fn, msg), code
  end
  self._schema = self._c:schema()
  return true
end

--- Set, change or clear the TTL attribute of the database: in one
-- transaction the schema stores it and every expiry entry (and the entries
-- of indexes that carry the TTL value) is rebuilt.  Items expire by the
-- new attribute at once for every handle of this process; other processes
-- follow at their next write.  A TTL function given to `dynafile.open`
-- still judges this handle's items as before.
-- @tparam string|false name the attribute holding the expiry time in
--   epoch seconds, or false: items no longer expire
-- @treturn true|nil
-- @treturn string message on failure
-- @treturn string code on failure ("ReadOnly", "IOError", "DiskFull", ...)
-- @raise on a name that is neither a non-empty string nor false, a closed
--   handle, or from inside a transaction of this database
-- @usage db:set_ttl("expires_at")   -- and later db:set_ttl(false)
function DB:set_ttl(name)
  local fn = "set_ttl"
  check_open(self, fn)
  if name ~= false and type(name) ~= "string" then
    fail(fn, "name must be an attribute name or false, got %s", type(name))
  end
  local ok, msg, code, misuse = self._c:set_ttl(name or nil)
  if not ok then
    if misuse then failed(fn, msg, code, misuse) end
    return nil, string_format("dynafile.%s: %s", fn, msg), code
  end
  local schema = self._c:schema()
  self._schema, self._ttl_attr = schema, schema.ttl
  self._timed = schema.ttl ~= nil or self._ttl_fn ~= nil
  return true
end

--- Statistics for tools.
-- @treturn table|nil `{items, index_entries, map_size, used_bytes,`
--   `max_readers, readers_used, stream_first, stream_last}` (sizes in bytes)
-- @treturn string message on failure
-- @treturn string code on failure
-- @raise when the handle is closed
function DB:stat()
  check_open(self, "stat")
  return self._c:stat()
end

--- Verify every index and the TTL expiry entries against the items, in
-- one read transaction, and report what recovery did when this process
-- opened the database.
-- @treturn table|nil the report: `items`, `index_entries`,
--   `expiry_entries`, and the problems found: `bad_items`,
--   `missing_index`, `stale_index`, `missing_expiry`, `stale_expiry`; `ok`
--   is true when all of those are zero.  `recovery` tells what the open
--   of this process found after a crash: `recovered` (it had to recover),
--   `meta_restored` (LMDB's meta pages were put back as of the last
--   checkpoint), `records_replayed` and `replayed_bytes` (redo-log
--   records applied since), `seconds`, `log_created` (the database had no
--   redo log: new, or written by a release before it).  `checkpoint` and
--   `log_bytes`: the redo log's checkpoint in force and the bytes of log
--   since it.
-- @treturn string message when the check could not run
-- @treturn string code when the check could not run ("IOError", ...)
-- @raise when the handle is closed
function DB:check()
  check_open(self, "check")
  return self._c:check()
end

-- The core's decoder, for the CLI and tools.
M.decode = core.decode

return M
