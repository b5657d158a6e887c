--- dynafile: an embedded store with DynamoDB's data model, on LMDB.
--
-- This module is the public Lua API.  It checks arguments, keeps the
-- per-database state that lives in Lua (listeners, TTL functions, clocks),
-- and runs every piece of user Lua code -- filters, conditions, update
-- functions, listeners -- itself, around calls into the C core
-- (`dynafile.core`), which never calls Lua.
--
-- Conventions: misuse raises an error naming the function and the argument
-- ("dynafile.put_item: ..."); expected failures return `nil, message, code`.
-- @module dynafile

local core = require "dynafile.core"
local update = require "dynafile.update"
local types = require "dynafile.types"
local expr = require "dynafile.expr"

local error, type, pairs, ipairs, select, next = error, type, pairs, ipairs, select, next
local setmetatable, getmetatable, tostring, pcall = setmetatable, getmetatable, tostring, pcall
local os_time, string_format, table_sort = os.time, string.format, table.sort
local table_concat = table.concat
local math_floor, math_huge = math.floor, math.huge
local io = io
local co_running, co_status = coroutine.running, coroutine.status
local unpack = table.unpack or unpack -- luacheck: ignore 143

local M = {}

-- Misuse errors point at the caller's line, not into this library: raise
-- gives error() the level of the first function on the stack outside
-- lua/dynafile/ (however deep inside the library the misuse was found).
local getinfo = debug and debug.getinfo -- luacheck: ignore 143
local LIB_DIR = getinfo and (getinfo(1, "S").source or ""):match("^(@.*[/\\])init%.lua$")

local function raise(msg)
  local level = 3
  if LIB_DIR then
    level = 2
    while true do
      local info = getinfo(level, "S")
      if not info then
        level = 0
        break
      end
      local src = info.source or ""
      if info.what ~= "tail" and src:sub(1, #LIB_DIR) ~= LIB_DIR then break end
      level = level + 1
    end
  end
  error(msg, level)
end

--- The stored null value (MessagePack nil).  Use it where a Lua nil would
-- vanish, e.g. inside lists.
M.null = core.null
--- The library version, a string such as "0.1.0".
M.version = core.version

--- Mark a table as a list, so an empty one is stored as an empty list
-- rather than an empty map.  A table whose keys are exactly 1..n is a list
-- anyway; this matters only for empty tables.
-- @tparam[opt] table t the table to mark (default: a new empty table)
-- @treturn table t itself, with a marker metatable
-- @raise when t is neither nil nor a table, or has a protected metatable
function M.array(t)
  if t ~= nil and type(t) ~= "table" then
    error(string_format("dynafile.array: t must be a table or nil, got %s", type(t)), 2)
  end
  local ok, r = pcall(setmetatable, t or {}, core.array_mt)
  if not ok then error("dynafile.array: t: " .. tostring(r), 2) end
  return r
end

-- DynamoDB's value types (see dynafile.types for the details).

--- Make a set value (DynamoDB's SS, NS or BS): `dynafile.set{"a", "b"}`,
-- `dynafile.set({}, "N")`.  See `dynafile.types.set`.
M.set = types.set
--- Make a binary value (DynamoDB's B) from a string.  See
-- `dynafile.types.binary`.
M.binary = types.binary
--- Make a decimal value, an exact DynamoDB number: `dynafile.decimal("0.1")`.
-- See `dynafile.types.decimal`.
M.decimal = types.decimal
--- The DynamoDB type of a value ("S", "N", "B", "BOOL", "NULL", "M", "L",
-- "SS", "NS", "BS"), nil for a value no item can hold.
M.type = types.type
--- The Lua value of a DynamoDB N string: a Lua number when exact, else a
-- decimal value (an `int64_t` cdata for big integers under LuaJIT).
M.number = types.number
--- DynamoDB's canonical N string of a number value ("1.5", "100", "0").
M.number_string = types.number_string

--- A DynamoDB expression with its names and values, accepted wherever a
-- filter, condition, key condition, update or projection is (see
-- dynafile.expr).
-- @function expr
-- @tparam string text the expression, in DynamoDB's syntax
-- @tparam[opt] table names `{["#n"] = "attribute name"}`
-- @tparam[opt] table values `{[":v"] = value}`
-- @treturn table an expression object
M.expr = expr.new

--- Compile the expressions of one DynamoDB request against one set of
-- names and values (see dynafile.expr.request).
-- @function expressions
M.expressions = expr.request

--- The names and values of one DynamoDB request, for compiling its
-- expressions one by one: `args:condition(kind, text)` (kind "condition",
-- "filter" or "key_condition"), `args:key_condition(text, pk, sk)`,
-- `args:projection(text)`, `args:update(text)` and `args:check_unused()`,
-- each returning its result or `nil, message, "ValidationError"` with
-- DynamoDB's message.  Compiled conditions and projections are accepted
-- as `condition`, `filter` and `projection` options; a compiled condition
-- also has `e:eval(item)`, a projection `p:apply(item)`.
-- @function ddb_args
-- @tparam[opt] table names `{["#n"] = "attribute name"}`
-- @tparam[opt] table values `{[":v"] = value}`
-- @return the args object, or nil, message, "ValidationError"
M.ddb_args = core.ddb_args

local DB = {}
DB.__index = DB
DB.__name = "dynafile.db"

-- State that belongs to the database, not the handle, shared by every
-- handle of it in this Lua state and keyed by the database's identity
-- (device and inode): the stream listeners, the queue of events being
-- delivered, and whether this Lua state holds the write transaction.  It
-- goes away when the last handle closes.
local shared = {}

local function fail(fn, fmt, ...)
  raise(string_format("dynafile.%s: " .. fmt, fn, ...))
end

local function check_opts(fn, opts, allowed, argname)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    fail(fn, "%s must be a table, got %s", argname or "options", type(opts))
  end
  for k in pairs(opts) do
    if not allowed[k] then
      fail(fn, "unknown option '%s'", tostring(k))
    end
  end
  return opts
end

-- ------------------------------------------------------------- opening

local OPEN_OPTS = {
  pk = true, sk = true, ttl = true, clock = true, gsi = true, lsi = true,
  sync = true, readonly = true, map_size = true, max_readers = true,
  progress = true, listener_error = true, stream = true,
}
local SYNC = { full = true, normal = true, off = true }

local function index_defs(fn, t, kind, out)
  if t == nil then return end
  if type(t) ~= "table" then fail(fn, "%s must be a table of index definitions", kind) end
  local names = {}
  for name in pairs(t) do
    if type(name) ~= "string" or name == "" then
      fail(fn, "%s: index names must be non-empty strings", kind)
    end
    names[#names + 1] = name
  end
  table_sort(names)
  for _, name in ipairs(names) do
    local d = t[name]
    if type(d) ~= "table" then fail(fn, "%s.%s must be a table", kind, name) end
    for k in pairs(d) do
      if k ~= "pk" and k ~= "sk" and k ~= "projection" then
        fail(fn, "%s.%s: unknown field '%s'", kind, name, tostring(k))
      end
    end
    if kind == "gsi" and type(d.pk) ~= "string" then
      fail(fn, "gsi.%s.pk must be an attribute name", name)
    end
    if kind == "lsi" and d.pk ~= nil then
      fail(fn, "lsi.%s: a local index shares the table's pk; give only sk", name)
    end
    if kind == "lsi" and type(d.sk) ~= "string" then
      fail(fn, "lsi.%s.sk must be an attribute name", name)
    end
    if d.sk ~= nil and type(d.sk) ~= "string" then
      fail(fn, "%s.%s.sk must be an attribute name", kind, name)
    end
    local p = d.projection
    if p ~= nil and p ~= "all" and p ~= "keys" and type(p) ~= "table" then
      fail(fn, "%s.%s.projection must be \"all\", \"keys\" or a list of names", kind, name)
    end
    if type(p) == "table" then
      for i, a in ipairs(p) do
        if type(a) ~= "string" then
          fail(fn, "%s.%s.projection[%d] must be a string", kind, name, i)
        end
      end
    end
    out[#out + 1] = { name = name, kind = kind, pk = d.pk, sk = d.sk, projection = p or "all" }
  end
end

-- Open with a progress function: the core runs the open (and any index
-- backfill) on a helper thread and queues its progress reports; this loop
-- takes them one by one and calls `progress` here, on the caller's Lua
-- thread, so the C core never calls Lua.  An error raised by `progress`
-- stops the reports; the open still runs to its end (the build is one
-- transaction and is kept), the handle is closed and the error re-raised.
local function open_with_progress(path, c, progress)
  local op, msg, code = core.open_start(path, c)
  if not op then return nil, msg, code end
  local perr
  while true do
    local h, a, b, d = op:wait()
    if h ~= false then
      if perr ~= nil then
        if h then h:close() end
        error(perr, 0)
      end
      return h, a, b
    end
    if perr == nil then
      local ok, e = pcall(progress, a, b, d)
      if not ok then perr = e end
    end
  end
end

--- Open (creating when missing) the database in directory `path`, or,
-- with a path `"dynamodb://TABLE"`, a DynamoDB table through the same API
-- (see dynafile.remote.db and the README's "The same API over DynamoDB").
-- Handles opened on one directory in one process share one LMDB
-- environment; open after fork, never before (nginx forks its workers).
--
-- Options (all optional):
--
-- * `pk`, `sk`: the key attribute names.  Defaults at creation "PK" and
--   "SK"; `sk = false` makes a table with a partition key only.  A reopen
--   without them uses the stored schema; different ones are a
--   "ValidationError".
-- * `ttl`: the name of an attribute holding an expiry time in epoch
--   seconds, or a function `(item, now) -> expired?`.  An item is expired
--   when its TTL value is less than now.
-- * `clock`: a function returning the current time in seconds (default
--   `os.time`), used for TTL.
-- * `gsi`: `{name = {pk = attr, sk = attr, projection = "all" | "keys" |
--   {attr, ...}}}`, global secondary indexes; `lsi`: `{name = {sk = attr,
--   projection = ...}}`, local ones (they share the table's pk).
-- * `sync`: "full" (the default: every commit is on disk before the call
--   returns), "normal" or "off" (see the README's durability modes).
-- * `readonly`: open without write access.
-- * `map_size`: the initial map size in bytes (the map grows by itself);
--   `max_readers`: reader slots, used by the first opener of the
--   directory.
-- * `progress`: `function(index, done, total)` called while a new index
--   is filled from the existing items (about every 1% and at the end), on
--   the caller's thread (the open itself then runs on a helper thread; see
--   open_with_progress).
-- * `listener_error`: `function(err, event)` told of errors raised by
--   stream listeners (default: a line on stderr).
-- * `stream`: the change log that `db:poll_stream` reads, stored in the
--   database for every process: `{keep = n, keep_seconds = s}` keeps the
--   newest n changes and those younger than s seconds (either limit may be
--   left out), `true` keeps the newest 10,000, `false` turns the log off.
--   Without the option the stored setting stays (a new database: off).
-- @tparam string path directory (created with its parents)
-- @tparam[opt] table opts the options above
-- @treturn db|nil the handle
-- @treturn string message on failure
-- @treturn string code on failure: "ValidationError" (schema differs from
--   the stored one, bad index definition), "IOError" (including permission
--   denied and a full disk), "Corrupt" (not a dynafile directory, a torn
--   file), "VersionMismatch" (written by a newer dynafile, or a lock file
--   of another LMDB version), "ReadOnly", "ReadersFull", "Forked",
--   "NoMemory"
-- @raise on misuse: a path that is not a non-empty string, an unknown
--   option, an option of the wrong type
-- @usage local db = assert(dynafile.open("./data", {pk = "PK", sk = "SK"}))
function M.open(path, opts)
  local fn = "open"
  if type(path) ~= "string" or path == "" then
    fail(fn, "path must be a non-empty string, got %s", type(path))
  end
  if path:find("^dynamodb://") then
    -- a DynamoDB table (dynafile.remote.db); index definitions are checked
    -- here, as for a local database
    local defs = {}
    if type(opts) == "table" then
      index_defs(fn, opts.gsi, "gsi", defs)
      index_defs(fn, opts.lsi, "lsi", defs)
    end
    return require("dynafile.remote.db").open(path, opts, defs)
  end
  if path:find("\0", 1, true) then
    fail(fn, "path must not contain NUL bytes") -- C would cut it short
  end
  opts = check_opts(fn, opts, OPEN_OPTS)
  local c = {}
  if opts.pk ~= nil then
    if type(opts.pk) ~= "string" or opts.pk == "" then fail(fn, "pk must be an attribute name") end
    c.pk = opts.pk
  end
  if opts.sk ~= nil then
    if opts.sk ~= false and (type(opts.sk) ~= "string" or opts.sk == "") then
      fail(fn, "sk must be an attribute name or false")
    end
    c.pk = c.pk or "PK"
    c.sk = opts.sk or nil
  elseif c.pk then
    c.sk = "SK"
  end
  local ttl_fn
  if type(opts.ttl) == "string" then
    if opts.ttl == "" then fail(fn, "ttl must be an attribute name or a function") end
    c.ttl = opts.ttl
  elseif type(opts.ttl) == "function" then
    ttl_fn = opts.ttl
  elseif opts.ttl ~= nil then
    fail(fn, "ttl must be an attribute name or a function, got %s", type(opts.ttl))
  end
  if opts.clock ~= nil and type(opts.clock) ~= "function" then
    fail(fn, "clock must be a function")
  end
  if opts.sync ~= nil then
    if not SYNC[opts.sync] then fail(fn, "sync must be \"full\", \"normal\" or \"off\"") end
    c.sync = opts.sync
  end
  if opts.readonly ~= nil and type(opts.readonly) ~= "boolean" then
    fail(fn, "readonly must be a boolean")
  end
  c.readonly = opts.readonly
  for _, k in ipairs { "map_size", "max_readers" } do
    local v = opts[k]
    if v ~= nil and (type(v) ~= "number" or v < 1 or v ~= math_floor(v) or v == math_huge) then
      fail(fn, "%s must be a positive integer", k)
    end
    c[k] = v
  end
  if opts.progress ~= nil and type(opts.progress) ~= "function" then
    fail(fn, "progress must be a function")
  end
  if opts.listener_error ~= nil and type(opts.listener_error) ~= "function" then
    fail(fn, "listener_error must be a function")
  end
  local defs = {}
  index_defs(fn, opts.gsi, "gsi", defs)
  index_defs(fn, opts.lsi, "lsi", defs)
  if #defs > 0 then c.indexes = defs end
  local so = opts.stream
  if type(so) == "table" then
    for k, v in pairs(so) do
      if k ~= "keep" and k ~= "keep_seconds" then
        fail(fn, "stream: unknown field '%s'", tostring(k))
      end
      if type(v) ~= "number" or v < 0 or v ~= v or v == math_huge
          or (k == "keep" and v ~= math_floor(v)) then
        fail(fn, "stream.%s must be a non-negative %s", k, k == "keep" and "integer" or "number")
      end
    end
  elseif so ~= nil and type(so) ~= "boolean" then
    fail(fn, "stream must be a table {keep =, keep_seconds =} or a boolean")
  end
  c.stream = so

  local h, msg, code
  if opts.progress then
    h, msg, code = open_with_progress(path, c, opts.progress)
  else
    h, msg, code = core.open(path, c)
  end
  if not h then return nil, msg, code end
  local schema = h:schema()
  local id = h:id()
  local st = shared[id]
  if not st then
    -- held[1]: the write transaction this Lua state holds, weakly, so a
    -- coroutine abandoned inside a transaction (never resumed, collected)
    -- does not leave the database unwritable; its txn's __gc aborts it
    st = { listeners = {}, handles = 0, held = setmetatable({ false }, { __mode = "v" }),
           queue = {}, qhead = 1, qtail = 0 }
    shared[id] = st
  end
  st.handles = st.handles + 1
  if not st.stream_seq then
    -- poll_stream delivers what was committed after this point (when no
    -- reader slot is free now, after its first call instead)
    local ok, last = h:stream_read(-1)
    if ok then st.stream_seq = last end
  end
  local self = setmetatable({
    _c = h,
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
    _readonly = opts.readonly or false,
  }, DB)
  return self
end

-- ------------------------------------------------------------- helpers

local function now(self)
  if not self._timed then return nil end
  local clock = self._clock
  if clock then return clock() end
  return os_time()
end

local function is_expired(self, item, t)
  local f = self._ttl_fn
  if f and item then return f(item, t or now(self)) and true or false end
  return false
end

local function key_of(self, item, index)
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

local function report_listener_error(self, err, event)
  local h = self._listener_error
  if h then
    local ok, e2 = pcall(h, err, event)
    if ok then return end
    err = tostring(err) .. " (and the listener_error handler failed: " .. tostring(e2) .. ")"
  end
  io.stderr:write("dynafile: stream listener error: ", tostring(err), "\n")
end

-- Deliver a commit's events to every listener, in commit order.  A write
-- made by a listener commits at once, but its events are queued behind
-- the events still being delivered, so every listener sees every commit in
-- order.  The listener list is replaced, never changed in place, when a
-- listener is added or removed: an event goes to the listeners registered
-- when its delivery starts.
local function dispatch(self, events)
  local st = self._st
  local q, tail = st.queue, st.qtail
  for i = 1, #events do
    q[tail + 1], q[tail + 2] = self, events[i]
    tail = tail + 2
  end
  st.qtail = tail
  -- The coroutine delivering (true: the main thread of Lua 5.1).  A write
  -- made while it delivers -- by a listener, or a coroutine a listener
  -- resumed -- queues.  A delivering coroutine that is suspended (a
  -- listener yielded) or dead hands the queue over, or the events of
  -- other coroutines' writes would wait for it, forever if abandoned.
  local me = co_running() or true
  local owner = st.dispatching
  if owner and (owner == me or type(owner) ~= "thread"
      or co_status(owner) == "normal") then
    return
  end
  st.dispatching = me
  while st.qhead < st.qtail do
    local head = st.qhead
    local by, ev = q[head], q[head + 1]
    q[head], q[head + 1] = nil, nil
    st.qhead = head + 2
    local list = st.listeners
    for j = 1, #list do
      local ok, err = pcall(list[j].fn, ev)
      if not ok then report_listener_error(by, err, ev) end
    end
  end
  if st.dispatching == me then
    st.qhead, st.qtail = 1, 0
    st.dispatching = false
  end
end

local function has_listeners(self)
  return #self._st.listeners > 0
end

-- Raise when this Lua state already holds the database's write
-- transaction: a write from a transaction function, an update function
-- or a condition would otherwise wait for itself.
local function check_writable(self, fn)
  if self._readonly then
    raise(string_format("dynafile.%s: the database is opened read-only", fn))
  end
  local held = self._st.held
  if held[1] then
    -- a transaction nothing references any more (dropped coroutine, an
    -- error that unwound past its owner) is collected here, not counted
    collectgarbage()
  end
  if held[1] then
    raise(string_format("dynafile.%s: the write transaction of this database is held "
      .. "by the code calling this (a transaction, an update function or a condition); "
      .. "write through the transaction object, or after it ends", fn))
  end
end

local function check_open(self, fn)
  if getmetatable(self) ~= DB then
    raise(string_format("dynafile.%s: expected a database handle (use db:%s)", fn, fn))
  end
  if self._c:closed() then
    raise(string_format("dynafile.%s: database is closed", fn))
  end
end

local function run_body(self, txn, t, body, a, b, c, d)
  -- opportunistic TTL purge (not when the body is the purge itself, which
  -- counts what it deletes); its failure is the write's ("Retry": the map
  -- is full, the transaction doomed: run it all again)
  if self._ttl_attr and body ~= self._purge_body then
    local n, msg, code = txn:purge(8)
    if not n then return nil, msg, code end
  end
  return body(self, txn, t, a, b, c, d)
end

-- Run body(txn, t) in a write transaction, committing when it returns a
-- true first value, rolling back otherwise; re-raises errors after the
-- rollback; runs the whole body again when the map had to grow.  Events go
-- to the listeners after the commit.
local function write_txn(self, body, a, b, c, d)
  local h = self._c
  local st = self._st
  local events_wanted = has_listeners(self)
  for _ = 1, 16 do
    local t = now(self)
    local txn, msg, code = h:begin(true, events_wanted, t)
    if not txn then return nil, msg, code end
    st.held[1] = txn
    local ok, r1, r2, r3, r4 = pcall(run_body, self, txn, t, body, a, b, c, d)
    if not ok then
      txn:free()
      st.held[1] = nil
      error(r1, 0)
    end
    if r1 == nil then
      txn:free()
      st.held[1] = nil
      if r3 ~= "Retry" then return nil, r2, r3, r4 end
    else
      local cok, cmsg, ccode = txn:commit()
      st.held[1] = nil -- committed or not, the write lock is released
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
  return nil, "the database map kept filling up", "IOError"
end

-- The current item under key inside txn, honouring a TTL function: an item
-- it finds expired is deleted (event marked expired) and reported absent.
local function current(self, txn, key, t)
  local old = txn:get(key)
  if old and self._ttl_fn and is_expired(self, old, t) then
    txn:delete(key, false, "put_item", true)
    return nil
  end
  return old
end

local function compile_condition(fn, c)
  if type(c) == "function" then return c end
  if core.kind(c) == "expr" then return c end
  if expr.is(c) then
    local e, msg = expr.compiled(c, "condition")
    if not e then return nil, string_format("dynafile.%s: condition: %s", fn, msg) end
    return e
  end
  if type(c) ~= "string" then
    fail(fn, "condition must be a function, an expression string or a dynafile.expr, got %s",
      type(c))
  end
  local e, msg = core.compile(c)
  if not e then
    return nil, string_format("dynafile.%s: condition: %s", fn, (msg:gsub("^filter: ", "")))
  end
  return e
end

-- Evaluate a compiled condition (function or C expression) on the current
-- item.  [raises what a condition function raises]
local function condition_holds(self, txn, key, cond, old_loaded, old)
  if type(cond) == "function" then
    return cond(old_loaded and old or nil) and true or false
  end
  if self._ttl_fn and not old then
    return core.eval(cond, nil)
  end
  return txn:check(key, cond)
end
M._condition_holds = condition_holds

local function cond_failed(fn)
  return nil, string_format("dynafile.%s: the condition failed", fn), "ConditionalCheckFailed"
end

-- ------------------------------------------------------------- writes

--- A database handle, from `open`.  Call its methods as `db:put_item(...)`;
-- every method raises once the handle is closed.
-- @type db

local PUT_OPTS = { condition = true, return_old = true }

-- The results of put_item and delete_item: true [, old] or nil, msg, code.
local function written(return_old, ok, old_or_msg, code)
  if not ok then return nil, old_or_msg, code end
  if return_old then return true, old_or_msg end
  return true
end

local function put_body(self, txn, t, item, cond, return_old)
  local old
  if cond then
    old = current(self, txn, item, t)
    if not condition_holds(self, txn, item, cond, true, old) then
      return cond_failed("put_item")
    end
  elseif self._ttl_fn then
    current(self, txn, item, t)
  end
  local ok, prev, code = txn:put(item, return_old, "put_item")
  if not ok then return nil, prev, code end
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
-- @raise on misuse: an invalid item (a missing or non-key key attribute, a key too long,
--   a function value, a cycle, nesting deeper than 32) or option, a condition that is neither
--   a function nor a string, a closed or read-only handle, a write from
--   inside one of this database's own transactions or update functions
function DB:put_item(item, opts)
  check_open(self, "put_item")
  check_writable(self, "put_item")
  if opts == nil and not self._ttl_fn and not has_listeners(self) then
    return self._c:put(item, now(self))
  end
  opts = check_opts("put_item", opts, PUT_OPTS)
  if type(item) ~= "table" then fail("put_item", "item must be a table, got %s", type(item)) end
  local cond, msg
  if opts.condition ~= nil then
    cond, msg = compile_condition("put_item", opts.condition)
    if not cond then return nil, msg, "ValidationError" end
  end
  return written(opts.return_old, write_txn(self, put_body, item, cond,
    opts.return_old and true or false))
end

local DELETE_OPTS = PUT_OPTS

local function delete_body(self, txn, t, key, cond, return_old)
  local old = current(self, txn, key, t)
  if cond and not condition_holds(self, txn, key, cond, true, old) then
    return cond_failed("delete_item")
  end
  if not old then return true, nil end
  local ok, prev, code = txn:delete(key, return_old, "delete_item")
  if ok == nil then return nil, prev, code end
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
  check_writable(self, "delete_item")
  if opts == nil and not self._ttl_fn and not has_listeners(self) then
    local ok, msg, code = self._c:delete(key, now(self))
    if not ok then return nil, msg, code end
    return true
  end
  opts = check_opts("delete_item", opts, DELETE_OPTS)
  self._c:check_key(key, "delete_item")
  local cond, msg
  if opts.condition ~= nil then
    cond, msg = compile_condition("delete_item", opts.condition)
    if not cond then return nil, msg, "ValidationError" end
  end
  return written(opts.return_old, write_txn(self, delete_body, key, cond,
    opts.return_old and true or false))
end

local UPDATE_OPTS = { condition = true, return_old = true }

local function update_body(self, txn, t, key, plan, cond, return_old)
  -- the item as a Lua table only for Lua code (an update or condition
  -- function, a TTL function): the C engine reads the stored bytes
  local lua_old = type(plan) == "function" or type(cond) == "function" or self._ttl_fn
  local old
  if lua_old then old = current(self, txn, key, t) end
  if cond and not condition_holds(self, txn, key, cond, lua_old, old) then
    return cond_failed("update_item")
  end
  return update.run(self, "update_item", txn, key, old, plan, return_old)
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
  check_writable(self, "update_item")
  opts = check_opts("update_item", opts, UPDATE_OPTS)
  self._c:check_key(key, "update_item")
  local plan, pmsg = update.compile(self, "update_item", changes)
  if not plan then return nil, pmsg, "ValidationError" end
  local cond, msg
  if opts.condition ~= nil then
    cond, msg = compile_condition("update_item", opts.condition)
    if not cond then return nil, msg, "ValidationError" end
  end
  local new, old, code = write_txn(self, update_body, key, plan, cond,
    opts.return_old and true or false)
  if new == nil then return nil, old, code end
  if opts.return_old then return new, old end
  return new
end

-- ------------------------------------------------------------- reads

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
  local h = getmetatable(self) == DB and self._c
  if not h then check_open(self, "get_item") end
  if opts ~= nil then return self:_get_projected(key, opts) end
  if not self._timed then return h:get(key) end
  local t = now(self)
  local item = h:get(key, t)
  if item and self._ttl_fn and is_expired(self, item, t) then return nil end
  return item
end

local GET_OPTS = { projection = true }

-- get_item with options: a projection, applied after the TTL function
-- (which judges the whole item).
function DB:_get_projected(key, opts)
  opts = check_opts("get_item", opts, GET_OPTS)
  local pr
  if opts.projection ~= nil then
    local msg
    pr, msg = M._projection("get_item", opts.projection)
    if not pr then return nil, msg, "ValidationError" end
  end
  local t = now(self)
  if self._ttl_fn then
    local item = self._c:get(key, t)
    if item == nil or is_expired(self, item, t) then return nil end
    if pr then return core.project(pr, item, "get_item") end
    return item
  end
  return self._c:get(key, t, pr)
end

-- Compile a projection option: a dynafile.expr (a ProjectionExpression)
-- or a list of document paths in DynamoDB's syntax.
function M._projection(fn, pj)
  if core.kind(pj) == "projection" then return pj end
  local x = pj
  if type(pj) == "table" and not expr.is(pj) then
    local n = #pj
    if n == 0 then fail(fn, "projection must be a non-empty list of paths or a dynafile.expr") end
    -- every name through a placeholder: any attribute name works
    local parts, names, k = {}, {}, 0
    for i = 1, n do
      if type(pj[i]) ~= "string" then
        fail(fn, "projection[%d] must be a path string, got %s", i, type(pj[i]))
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
    fail(fn, "projection must be a list of paths or a dynafile.expr, got %s", type(pj))
  end
  local pr, msg = expr.compiled(x, "projection")
  if not pr then return nil, string_format("dynafile.%s: %s", fn, msg) end
  return pr
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
  check_open(self, "batch_get_item")
  if type(keys) ~= "table" then fail("batch_get_item", "keys must be a list of keys") end
  local pr
  if opts ~= nil then
    opts = check_opts("batch_get_item", opts, GET_OPTS)
    if opts.projection ~= nil then
      local msg
      pr, msg = M._projection("batch_get_item", opts.projection)
      if not pr then return nil, msg, "ValidationError" end
    end
  end
  local n = #keys
  for i = 1, n do
    if type(keys[i]) ~= "table" then
      fail("batch_get_item", "keys[%d] must be a key table, got %s", i, type(keys[i]))
    end
    self._c:check_key(keys[i], "batch_get_item")
  end
  local t = now(self)
  local txn, msg, code = self._c:begin(false, false, t)
  if not txn then return nil, msg, code end
  local out = {}
  -- a TTL function judges whole items: project after it
  local in_txn = not self._ttl_fn and pr or nil
  local ok, err = pcall(function()
    for i = 1, n do out[i] = txn:get(keys[i], in_txn) or false end
  end)
  txn:free()
  if not ok then error(err, 0) end
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

local QUERY_OPTS = {
  starts_with = true, begins_with = true, eq = true, lt = true, le = true,
  gt = true, ge = true, between = true, scan_index_forward = true,
  index = true, filter = true, limit = true, start_after = true, stats = true,
  key_condition = true, projection = true,
}
local SCAN_OPTS = {
  filter = true, limit = true, start_after = true, index = true,
  segment = true, segments = true, stats = true, projection = true,
}
local NO_OPTS = setmetatable({}, { __newindex = function() error("read-only", 2) end })

-- The key conditions, ranked for messages that name two of them.
local CONDS = { begins_with = 1, eq = 2, lt = 3, le = 4, gt = 5, ge = 6, between = 7 }

local function key_arg(fn, name, v)
  local tv = type(v)
  if tv ~= "string" and tv ~= "number" then
    fail(fn, "%s must be a string or a number, got %s", name, tv)
  end
  if v ~= v then fail(fn, "%s must not be NaN", name) end
end

local function positive_int(fn, name, v)
  if type(v) ~= "number" or v < 1 or v ~= math_floor(v) or v == math_huge then
    fail(fn, "%s must be a positive integer", name)
  end
end

-- Build the C page spec from user options: one table, sized once, that
-- later also holds the reader's state (see reader_new).  Returns spec,
-- lua_filter, limit, or raises; a filter string that does not parse
-- returns nil, msg.
local function build_spec(self, fn, pk, opts, scanning)
  local allowed = scanning and SCAN_OPTS or QUERY_OPTS
  if opts == nil then
    opts = NO_OPTS
  elseif type(opts) ~= "table" then
    fail(fn, "options must be a table, got %s", type(opts))
  end
  local spec = {
    fn = fn, pk = nil, cond = nil, lo = nil, hi = nil, start = nil,
    reverse = false, index = nil, start_after = nil, segment = nil,
    segments = nil, filter = nil, max = nil, now = nil, stats = nil,
    -- the reader's fields (reader_new)
    h = nil, db = nil, lua_filter = nil, limit = nil, ttl_fn = nil,
    items = nil, pos = 0, n = 0, next_key = nil, done = false, returned = 0,
    last = nil, filled = false, projection = nil, late_projection = nil,
  }
  local cond
  for k, v in pairs(opts) do
    if not allowed[k] then fail(fn, "unknown option '%s'", tostring(k)) end
    if CONDS[k] then
      if cond then
        local a, b = cond, k
        if CONDS[a] > CONDS[b] then a, b = b, a end
        fail(fn, "only one key condition allowed (%s and %s)", a, b)
      end
      cond = k
      if k == "between" then
        if type(v) ~= "table" or v[1] == nil or v[2] == nil then
          fail(fn, "between must be a list {lo, hi}")
        end
        key_arg(fn, "between[1]", v[1])
        key_arg(fn, "between[2]", v[2])
        spec.lo, spec.hi = v[1], v[2]
      else
        key_arg(fn, k, v)
        if k == "begins_with" and type(v) ~= "string" then
          fail(fn, "begins_with must be a string")
        end
        spec.lo = v
      end
    end
  end
  if not scanning then
    local kx = opts.key_condition
    if expr.is(pk) then
      if kx ~= nil then fail(fn, "a key condition given twice (as pk and as key_condition)") end
      kx, pk = pk, nil
    end
    if kx ~= nil then
      if not expr.is(kx) then fail(fn, "key_condition must be a dynafile.expr") end
      if cond then fail(fn, "only one key condition allowed (%s and key_condition)", cond) end
      if pk ~= nil then fail(fn, "the partition key comes from key_condition; pass nil") end
      local kpk, ksk = self._pk, self._sk
      local index = opts.index
      local d = type(index) == "string" and self._schema.indexes[index]
      if d then
        kpk = d.pk or self._pk
        ksk = d.sk
      end
      local kc, msg = expr.key_condition(kx, kpk, ksk)
      if not kc then return nil, string_format("dynafile.%s: %s", fn, msg) end
      pk, cond = kc.pk, kc.cond
      spec.lo, spec.hi = kc.lo, kc.hi
    end
    key_arg(fn, "partition key", pk)
    spec.pk, spec.cond = pk, cond
    local start = opts.starts_with
    if start ~= nil then
      key_arg(fn, "starts_with", start)
      spec.start = start
    end
    local f = opts.scan_index_forward
    if f ~= nil and type(f) ~= "boolean" then fail(fn, "scan_index_forward must be a boolean") end
    spec.reverse = (f == false)
  else
    local k, n = opts.segment, opts.segments
    if (k == nil) ~= (n == nil) then fail(fn, "segment and segments go together") end
    if n ~= nil then
      positive_int(fn, "segments", n)
      positive_int(fn, "segment", k)
      if k > n then fail(fn, "segment must be in 1..segments") end
      if n > 4096 then fail(fn, "segments must be at most 4096") end
      spec.segment, spec.segments = k, n
    end
  end
  local index = opts.index
  if index ~= nil then
    if type(index) ~= "string" then fail(fn, "index must be an index name") end
    if not self._schema.indexes[index] then
      fail(fn, "index: no index named %s", index)
    end
    spec.index = index
  end
  local limit = opts.limit
  if limit ~= nil then positive_int(fn, "limit", limit) end
  local after = opts.start_after
  if after ~= nil then
    if type(after) ~= "table" then fail(fn, "start_after must be a key table") end
    spec.start_after = after
  end
  local stats = opts.stats
  if stats ~= nil then
    if type(stats) ~= "table" then fail(fn, "stats must be a table") end
    spec.stats = stats
  end
  local lua_filter
  local f = opts.filter
  if type(f) == "function" then
    lua_filter = f
  elseif type(f) == "string" then
    local e, msg = core.compile(f)
    if not e then return nil, string_format("dynafile.%s: %s", fn, msg) end
    spec.filter = e
  elseif core.kind(f) == "expr" then
    spec.filter = f
  elseif expr.is(f) then
    local e, msg = expr.compiled(f, "filter")
    if not e then return nil, string_format("dynafile.%s: %s", fn, msg) end
    spec.filter = e
  elseif f ~= nil then
    fail(fn, "filter must be a function, an expression string or a dynafile.expr, got %s",
      type(f))
  end
  local pj = opts.projection
  if pj ~= nil then
    local pr, msg = M._projection(fn, pj)
    if not pr then return nil, msg end
    spec.projection = pr
  end
  return spec, lua_filter, limit
end

local PAGE = 100
-- Pages after the first: Lua turns a page's items into tables at once, and
-- turning smaller batches over is faster (the tables of a page of 50 stay
-- in the caches while the loop uses them; measured with make bench: a scan
-- is about 15% faster than with pages of 100).  The first page stays at
-- PAGE, so a partition of up to PAGE items is still one read transaction.
local LATER_PAGE = 50

-- A reader: the page loop shared by iterators and page calls.  Items come
-- from C in pages, each read in one short read transaction; TTL functions,
-- Lua filters and the limit are applied here.  The reader is the spec
-- table itself (build_spec sized it for both), so a query allocates one
-- table besides its items and its iterator.
--
-- Invariant: `next_key` is the resume point after every entry the reader
-- has examined.  When reading stops on the limit inside a page, the resume
-- point is the key of the last item returned instead, so the rest of that
-- page is read again by the next call -- never skipped.
-- A TTL function judges the whole item: an index that projects only some
-- attributes gives it the stored item, read by the entry's key (an item
-- gone since is expired too).
local function projected_ttl(self, f)
  local h = self._c
  return function(it, t)
    local full = h:get(key_of(self, it), t)
    return full == nil or f(full, t)
  end
end

local function reader_new(self, r, lua_filter, limit)
  local stats = r.stats
  if r.projection and (lua_filter or self._ttl_fn) then
    -- Lua code judges whole items: project after it, in reader_read
    r.late_projection, r.projection = r.projection, nil
  end
  if stats then stats.examined, stats.decoded, stats.pages = 0, 0, 0 end
  local ttl_fn = self._ttl_fn
  if ttl_fn and r.index and self._schema.indexes[r.index].projection ~= "all" then
    ttl_fn = projected_ttl(self, ttl_fn)
  end
  r.now, r.h, r.db, r.ttl_fn = now(self), self._c, self, ttl_fn
  r.lua_filter, r.limit, r.next_key = lua_filter, limit, r.start_after
  return r
end

-- Read the next page into r.items: true when a page was read (it may be
-- empty), false at the end, nil, message, code when it cannot be read.
-- (The C call reads the spec's fields and ignores the reader's.)
local function reader_fill(r)
  if r.done then return false end
  local limit = r.limit
  r.start_after = r.next_key
  local want = r.filled and LATER_PAGE or PAGE
  r.filled = true
  if limit and not r.lua_filter and not r.ttl_fn then
    want = limit - r.returned
    if want > PAGE then want = PAGE end
  end
  r.max = want
  local items, nk, examined = r.h:page(r)
  if not items then
    r.done, r.pos, r.n = true, 0, 0
    return nil, nk, examined
  end
  local n = #items
  r.items, r.pos, r.n, r.next_key = items, 0, n, nk
  if nk == nil then r.done = true end
  local stats = r.stats
  if stats then
    stats.examined = stats.examined + examined
    stats.decoded = stats.decoded + n
    stats.pages = stats.pages + 1
  end
  return true
end

-- The next item, or nil at the end, or nil, message, code when a page
-- cannot be read.
local function reader_read(r)
  local limit, filter, ttl_fn = r.limit, r.lua_filter, r.ttl_fn
  while true do
    if limit and r.returned >= limit then return nil end
    local pos = r.pos
    if pos < r.n then
      pos = pos + 1
      r.pos = pos
      local it = r.items[pos]
      if not (ttl_fn and ttl_fn(it, r.now)) and (not filter or filter(it)) then
        r.returned = r.returned + 1
        r.last = it
        local lp = r.late_projection
        if lp then return core.project(lp, it, r.fn) end
        return it
      end
    else
      local ok, msg, code = reader_fill(r)
      if not ok then return nil, msg, code end
    end
  end
end

-- The resume key once reader_read has returned nil: nil when nothing
-- remains.
local function reader_state(r)
  -- stopped on the limit inside a page: resume after the last item given
  if r.pos < r.n then return key_of(r.db, r.last, r.index) end
  if r.done then return nil end
  return r.next_key
end

-- Pages hold no transaction between calls, so there is nothing to release
-- when a loop breaks early: one shared closing value serves every loop.
local CLOSER = setmetatable({}, { __close = function() end })

local function iterate(self, fn, pk, opts, scanning)
  check_open(self, fn)
  local spec, lua_filter, limit = build_spec(self, fn, pk, opts, scanning)
  if not spec then raise(lua_filter) end
  local r = reader_new(self, spec, lua_filter, limit)
  -- a closure, so the iterator also works called on its own (`it()`);
  -- it raises when a page cannot be read
  if not limit and not r.ttl_fn and not r.late_projection then
    -- the common loop, with its state in upvalues (the hot path of scans)
    local items, pos, n = nil, 0, 0
    return function()
      while true do
        if pos < n then
          pos = pos + 1
          local it = items[pos]
          if not lua_filter or lua_filter(it) then return it end
        else
          local ok, msg = reader_fill(r)
          if not ok then
            if msg ~= nil then error(msg, 2) end
            return nil
          end
          items, pos, n = r.items, 0, r.n
        end
      end
    end, nil, nil, CLOSER
  end
  return function()
    local it, msg = reader_read(r)
    if it == nil and msg ~= nil then error(msg, 2) end
    return it
  end, nil, nil, CLOSER
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
  return iterate(self, "query", pk, opts, false)
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
  return iterate(self, "scan", nil, opts, true)
end

local function page(self, fn, pk, opts, scanning)
  check_open(self, fn)
  local spec, lua_filter, limit = build_spec(self, fn, pk, opts, scanning)
  if not spec then return nil, lua_filter, "ValidationError" end
  local r = reader_new(self, spec, lua_filter, limit or PAGE)
  local items, n = {}, 0
  while true do
    local it, msg, code = reader_read(r)
    if it == nil then
      if msg ~= nil then return nil, msg, code end
      break
    end
    n = n + 1
    items[n] = it
  end
  return items, reader_state(r)
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
  return page(self, "query_page", pk, opts, false)
end

--- One page of a scan: up to `opts.limit` (default 100) items.
-- @tparam[opt] table opts as for scan
-- @treturn table|nil the items (a list)
-- @treturn table|string `next_key`, as for `query_page`; or the message
-- @treturn string "ValidationError" when the filter string does not parse
-- @raise on invalid options (other than the filter string), a closed
--   handle; and whatever a filter function raises
function DB:scan_page(opts)
  return page(self, "scan_page", nil, opts, true)
end

-- ------------------------------------------------------------- TTL

local function purge_body(self, txn, t, limit, keys)
  local n = 0
  if keys then
    -- the items were found expired in an earlier read: check again inside
    -- the write transaction, so an item written since is kept
    for i = 1, #keys do
      local item = txn:get(keys[i])
      if item and is_expired(self, item, t) then
        txn:delete(keys[i], false, "purge_expired", true)
        n = n + 1
      end
    end
  else
    n = txn:purge(limit or 0)
  end
  return n
end

DB._purge_body = purge_body

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
  check_open(self, "purge_expired")
  check_writable(self, "purge_expired")
  if limit ~= nil then positive_int("purge_expired", "limit", limit) end
  if self._ttl_fn then
    local t = now(self)
    local keys = {}
    local spec = { fn = "purge_expired", now = t }
    local nk
    repeat
      spec.start_after, spec.max = nk, PAGE
      local items, code
      items, nk, code = self._c:page(spec)
      if not items then return nil, nk, code end
      for i = 1, #items do
        if self._ttl_fn(items[i], t) then
          keys[#keys + 1] = key_of(self, items[i])
          if limit and #keys >= limit then nk = nil break end
        end
      end
    until nk == nil
    if #keys == 0 then return 0 end
    local n, msg, code = write_txn(self, purge_body, nil, keys)
    if n == nil then return nil, msg, code end
    return n
  end
  if not self._ttl_attr then return 0 end
  local n, msg, code = write_txn(self, purge_body, limit)
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
  local st = self._st
  local list = { unpack(st.listeners) }
  local h = { fn = fn }
  list[#list + 1] = h
  st.listeners = list
  return h
end

--- Remove a listener.  Events already being delivered when it is removed
-- may still reach it.
-- @param h the handle add_stream_listener returned
-- @treturn boolean true when it was registered
-- @raise when the handle is closed
function DB:remove_stream_listener(h)
  check_open(self, "remove_stream_listener")
  local st = self._st
  local list, found = {}, false
  for _, x in ipairs(st.listeners) do
    if x == h then found = true else list[#list + 1] = x end
  end
  st.listeners = list
  return found
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
  check_open(self, "poll_stream")
  local h, st = self._c, self._st
  local delivered, missed = 0, 0
  if not st.stream_seq then
    local ok, last, code = h:stream_read(-1)
    if not ok then return nil, last, code end
    st.stream_seq = last
    return 0, 0
  end
  while true do
    local after = st.stream_seq
    local events, nxt, first = h:stream_read(after, 256)
    if not events then return nil, nxt, first end
    if first > after + 1 then missed = missed + (first - after - 1) end
    st.stream_seq = nxt
    if #events > 0 then
      delivered = delivered + #events
      dispatch(self, events)
    end
    if nxt == after then break end
  end
  return delivered, missed
end

-- ------------------------------------------------------------- closing

--- Close the handle.  Further calls on it raise.  Closing twice is fine;
-- `<close>` and the garbage collector close it too.
-- @treturn true always
-- @raise nothing
function DB:close()
  local h = self._c
  if h and not h:closed() then h:close() end
  local st = self._st
  if st and not self._released then
    self._released = true
    st.handles = st.handles - 1
    if st.handles == 0 and shared[self._id] == st then shared[self._id] = nil end
  end
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
  check_open(self, "drop_index")
  if type(name) ~= "string" then
    fail("drop_index", "name must be an index name, got %s", type(name))
  end
  if self._readonly then
    return nil, "dynafile.drop_index: the database is opened read-only", "ReadOnly"
  end
  local ok, msg, code = self._c:drop_index(name)
  if not ok then return nil, msg, code end
  self._schema = self._c:schema()
  return true
end

--- Module functions that take a database handle.
-- @section handle_functions

--- `dynafile.drop_index(db, name)`: the same as `db:drop_index(name)`.
-- @param db a database handle
-- @tparam string name the index name
-- @treturn true|nil
-- @treturn string message on failure
-- @treturn string code on failure
-- @raise when db is not a handle, or as db:drop_index
function M.drop_index(db, name)
  local remote = package.loaded["dynafile.remote.db"]
  if getmetatable(db) ~= DB and not (remote and getmetatable(db) == remote.DB) then
    error("dynafile.drop_index: db: expected a database handle", 2)
  end
  return db:drop_index(name)
end

--- A database handle (continued).
-- @type db

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
-- one read transaction.
-- @treturn table|nil the report: `items`, `index_entries`,
--   `expiry_entries`, and the problems found: `bad_items`,
--   `missing_index`, `stale_index`, `missing_expiry`, `stale_expiry`; `ok`
--   is true when all of those are zero
-- @treturn string message when the check could not run
-- @treturn string code when the check could not run ("IOError", ...)
-- @raise when the handle is closed
function DB:check()
  check_open(self, "check")
  return self._c:check()
end

-- Internals shared with the other modules of the package.
M._DB = DB
M._write_txn = write_txn
M._dispatch = dispatch
M._now = now
M._current = current
M._key_of = key_of
M._compile_condition = compile_condition
M._check_opts = check_opts
M._cond_failed = cond_failed
M._has_listeners = has_listeners
M._check_writable = check_writable
M._select = select
M._next = next
M._decode = core.decode
M._condition_holds = condition_holds

require("dynafile.batch")(M)

return M
