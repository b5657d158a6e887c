--- dynafile.handle: the state behind a database handle, and the machinery
-- every operation on it shares.
--
-- * The class table `DB` of database handles (its methods are defined in
--   dynafile.db) and the state shared by every handle of one database in
--   this Lua state: the stream listeners and the queue of events being
--   delivered (dynafile.listeners delivers them).
-- * Time and TTL: the clock, TTL functions, the key of an item.
-- * Conditions: compiled once per call, evaluated on the current item.
-- * The one write runner, `write` (and `purge`, the same for
--   purge_expired): a write transaction around a body, committed when the
--   body returns a value, rolled back when it returns nil or raises, run
--   again when the map had to grow; events go to the listeners after the
--   commit.
--
-- Bodies run by the runner are `body(db, txn, now, a, b, c, d)` and
-- return their results, or `nil, message, code` to roll back.  Misuse the
-- binding reports inside them is raised (dynafile.errors.failed).
--
-- Invariant: a write transaction never outlives the runner's call: it is
-- committed or freed on every path, errors included.
-- @module dynafile.handle
-- @local

local core = require "dynafile.core"
local errors = require "dynafile.errors"
local expr = require "dynafile.expr"
local listeners = require "dynafile.listeners"
local update = require "dynafile.update"

local error, type, pcall, ipairs, setmetatable, getmetatable =
  error, type, pcall, ipairs, setmetatable, getmetatable
local os_time, string_format, table_concat = os.time, string.format, table.concat

local raise, failed = errors.raise, errors.failed

local M = {}

--- The class of database handles: the metatable of every handle.
local DB = {}
DB.__index = DB
DB.__name = "dynafile.db"
M.DB = DB

-- State that belongs to the database, not the handle, shared by every
-- handle of it in this Lua state and keyed by the database's identity
-- (device and inode): the stream listeners, the queue of events being
-- delivered, the change-log position of poll_stream.  It goes away when
-- the last handle closes.
local shared = {}

--- Make a handle around the binding's handle `c`.
-- @param c the binding's handle (from core.open)
-- @tparam string path the path it was opened with
-- @tparam table opts the open options (ttl, clock, listener_error)
-- @treturn table the handle
function M.new(c, path, opts)
  local schema = c:schema()
  local id = c:id()
  local st = shared[id]
  if not st then
    st = { listeners = {}, handles = 0, queue = {}, qhead = 1, qtail = 0 }
    shared[id] = st
  end
  st.handles = st.handles + 1
  if not st.stream_seq then
    -- poll_stream delivers what was committed after this point (when no
    -- reader slot is free now, after its first call instead)
    local ok, last = c:stream_read(-1)
    if ok then st.stream_seq = last end
  end
  local ttl_fn = type(opts.ttl) == "function" and opts.ttl or nil
  return setmetatable({
    _c = c,
    _id = id,
    _st = st,
    _path = path,
    _schema = schema,
    _pk = schema.pk,
    _sk = schema.sk,
    _ttl_attr = schema.ttl,
    _ttl_fn = ttl_fn,
    _clock = opts.clock,
    _timed = (schema.ttl ~= nil or ttl_fn ~= nil),
    _listener_error = opts.listener_error,
  }, DB)
end

--- Let go of the shared state when a handle closes (once per handle).
function M.release(self)
  local st = self._st
  if st and not self._released then
    self._released = true
    st.handles = st.handles - 1
    if st.handles == 0 and shared[self._id] == st then shared[self._id] = nil end
  end
end

--- Raise unless `self` is an open handle; raise once, too, after a
-- batch writer of its database was collected with writes never flushed.
-- @tparam string fn the function the user called
function M.check_open(self, fn)
  if getmetatable(self) ~= DB then
    raise(string_format("dynafile.%s: expected a database handle (use db:%s)", fn, fn))
  end
  if self._c:closed() then
    raise(string_format("dynafile.%s: database is closed", fn))
  end
  local lost = self._st.lost_writes
  if lost then
    self._st.lost_writes = nil
    raise(string_format("dynafile.%s: %s", fn, lost))
  end
end

-- ---------------------------------------------------------- time and TTL

--- The time TTL is judged by (nil when the database has no TTL).
function M.now(self)
  if not self._timed then return nil end
  local clock = self._clock
  if clock then return clock() end
  return os_time()
end
local now = M.now

--- Whether the TTL function finds `item` expired (false without one).
function M.is_expired(self, item, t)
  local f = self._ttl_fn
  if f and item then return f(item, t or now(self)) and true or false end
  return false
end
local is_expired = M.is_expired

--- The key table of `item`: the table's key attributes, and those of
-- `index` (a name) when given.
function M.key_of(self, item, index)
  local k = { [self._pk] = item[self._pk] }
  if self._sk then k[self._sk] = item[self._sk] end
  if index then
    local d = self._schema.indexes[index]
    if d then
      if d.pk then k[d.pk] = item[d.pk] end
      if d.sk then k[d.sk] = item[d.sk] end
    end
  end
  return k
end

--- The current item under `key` inside a write transaction, honouring a
-- TTL function: an item it finds expired is deleted (its event marked
-- expired) and reported absent.
-- @return the item or nil; or nil, message, code on a failure
-- @raise misuse (an invalid key), naming fn
function M.current(self, fn, txn, key, t)
  local old, msg, code, misuse = txn:get(key)
  if msg then return failed(fn, msg, code, misuse) end
  if old and self._ttl_fn and is_expired(self, old, t) then
    local found, dmsg, dcode, dmisuse = txn:delete_expired(key)
    if found == nil then return failed(fn, dmsg, dcode, dmisuse) end
    return nil
  end
  return old
end

-- ------------------------------------------------------------ conditions

--- Compile a condition: a function is its own; a string, or a
-- dynafile.expr ConditionExpression, becomes a C expression.
-- @return the condition; or nil, message when it does not parse
-- @raise when c is none of those
function M.compile_condition(fn, c)
  if type(c) == "function" then return c end
  if core.kind(c) == "expr" then return c end
  if expr.is(c) then
    local e, msg = expr.compiled(c, "condition")
    if not e then return nil, string_format("dynafile.%s: condition: %s", fn, msg) end
    return e
  end
  if type(c) ~= "string" then
    errors.fail(fn, "condition must be a function, an expression string or a dynafile.expr, "
      .. "got %s", type(c))
  end
  local e, msg = core.compile(c)
  if not e then
    return nil, string_format("dynafile.%s: condition: %s", fn, (msg:gsub("^filter: ", "")))
  end
  return e
end

--- Whether a compiled condition holds for the current item `old` (nil
-- when absent) under `key`.
-- @return true or false; or nil, message, code on a failure
-- @raise what a condition function raises
function M.condition_holds(self, fn, txn, key, cond, old)
  if type(cond) == "function" then
    return cond(old) and true or false
  end
  if self._ttl_fn and not old then
    -- the stored item may be there, expired by the TTL function
    return core.eval(cond, nil)
  end
  local holds, msg, code, misuse = txn:condition_holds(key, cond)
  if msg then return failed(fn, msg, code, misuse) end
  return holds
end

--- Compile a projection option: a list of document paths (in the
-- syntax of update paths: `a.b[0]`, `` `any name` ``), a dynafile.expr
-- ProjectionExpression, or a projection compiled already.
-- @return the compiled projection; or nil, message when it does not
--   compile
-- @raise when pj is none of those
function M.projection(fn, pj)
  if core.kind(pj) == "projection" then return pj end
  local x = pj
  if type(pj) == "table" and not expr.is(pj) then
    local n = #pj
    if n == 0 then
      errors.fail(fn, "projection must be a non-empty list of paths or a dynafile.expr")
    end
    -- every name through a placeholder: any attribute name works
    local parts, names, k = {}, {}, 0
    for i = 1, n do
      if type(pj[i]) ~= "string" then
        errors.fail(fn, "projection[%d] must be a path string, got %s", i, type(pj[i]))
      end
      local text = ""
      for _, seg in ipairs(update.parse_path(fn, pj[i])) do
        if type(seg) == "number" then
          text = text .. "[" .. (seg - 1) .. "]"
        else
          k = k + 1
          names["#p" .. k] = seg
          text = text .. (text == "" and "" or ".") .. "#p" .. k
        end
      end
      parts[i] = text
    end
    x = expr.new(table_concat(parts, ", "), names)
  elseif not expr.is(pj) then
    errors.fail(fn, "projection must be a list of paths or a dynafile.expr, got %s", type(pj))
  end
  local pr, msg = expr.compiled(x, "projection")
  if not pr then return nil, string_format("dynafile.%s: %s", fn, msg) end
  return pr
end

--- The results of a write whose condition failed.
function M.cond_failed(fn)
  return nil, string_format("dynafile.%s: the condition failed", fn), "ConditionalCheckFailed"
end

-- ------------------------------------------------------------- listeners

-- (dynafile.listeners; the handle's `_st` holds their state)
M.has_listeners = listeners.has_listeners
M.dispatch = listeners.dispatch
local has_listeners, dispatch = listeners.has_listeners, listeners.dispatch

-- ---------------------------------------------------------- the runner

-- How many times a write runs when the map keeps having to grow.
local GROW_RETRIES = core.grow_retries

-- The binding's methods that begin the runner's transactions, without
-- and with events.
local WRITE = { "write_txn", "write_txn_with_events" }
local PURGE = { "purge_txn", "purge_txn_with_events" }

local function run(self, fn, begin, body, a, b, c, d)
  local h = self._c
  local events_wanted = has_listeners(self)
  local begin_txn = h[begin[events_wanted and 2 or 1]]
  for _ = 1, GROW_RETRIES do
    local t = now(self)
    local txn, msg, code, misuse = begin_txn(h, t)
    -- ("Retry" from a begin: the purge every write begins with found the
    -- map full; it has grown, run again)
    if not txn and code ~= "Retry" then return failed(fn, msg, code, misuse) end
    if txn then
      local ok, r1, r2, r3, r4 = pcall(body, self, txn, t, a, b, c, d)
      if not ok then
        txn:free()
        error(r1, 0)
      end
      if r1 == nil then
        txn:free()
        if r3 ~= "Retry" then return nil, r2, r3, r4 end
      else
        local cok, cmsg, ccode = txn:commit()
        if cok then
          local events = events_wanted and txn:events()
          txn:free()
          if events then dispatch(self, events) end
          return r1, r2, r3, r4
        end
        txn:free()
        if ccode ~= "Retry" then return nil, cmsg, ccode end
      end
    end
  end
  return nil, "the database map kept filling up", "IOError"
end

--- Run `body(self, txn, now, a, b, c, d)` in a write transaction: commit
-- when it returns a value, roll back when it returns `nil, msg, code`
-- (and return that) or raises (and raise again).  The transaction begins
-- with the purge of a few expired items every write makes.  When the map
-- had to grow ("Retry") the whole body runs again.
-- @tparam string fn the function the user called
-- @return the body's results after the commit; or nil, message, code
-- @raise misuse (a read-only handle, a write transaction this thread
--   already holds), naming fn; and whatever the body raises
function M.write(self, fn, body, a, b, c, d)
  return run(self, fn, WRITE, body, a, b, c, d)
end

--- The same as `write` for purge_expired's body: its transaction begins
-- without the purge of a few, which the body does itself.
function M.purge(self, fn, body, a, b, c, d)
  return run(self, fn, PURGE, body, a, b, c, d)
end

return M
