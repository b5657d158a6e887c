--- dynafile: an embedded store with DynamoDB's data model, on LMDB.
--
-- This module is the public Lua API's entry: `dynafile.open`, the value
-- constructors and the module functions.  The handle's methods are in
-- dynafile.db.  The Lua layer checks arguments, keeps the per-database
-- state that lives in Lua (listeners, TTL functions, clocks), and runs
-- every piece of user Lua code -- filters, conditions, update functions,
-- listeners -- itself, around calls into the binding (`dynafile.core`);
-- the C core never calls Lua.  Its modules, each requiring only those
-- before it:
--
-- * dynafile.errors: the one raise, and how the binding's failures reach
--   the user;
-- * dynafile.update: update plans (compiled changes) and their application;
-- * dynafile.handle: the handle's state, TTL, conditions, listeners, the
--   one write runner;
-- * dynafile.reader: queries, scans, pages;
-- * dynafile.batch: batch writers, transactions;
-- * dynafile.db: the database handle's methods;
-- * dynafile (this module).
--
-- Conventions: misuse raises an error naming the function and the argument
-- ("dynafile.put_item: ..."); expected failures return `nil, message, code`.
-- The rules on values (keys, items, paths, index names) and their
-- messages belong to C; the Lua layer checks the shape of arguments only.
-- @module dynafile

local core = require "dynafile.core"
local errors = require "dynafile.errors"
local expr = require "dynafile.expr"
local handle = require "dynafile.handle"
local DB = require("dynafile.db").DB
local types = require "dynafile.types"

local error, type, pairs, ipairs, tostring, pcall = error, type, pairs, ipairs, tostring, pcall
local setmetatable, getmetatable = setmetatable, getmetatable
local table_sort = table.sort
local math_floor, math_huge = math.floor, math.huge

local fail, options = errors.fail, errors.options

local M = {}

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
    fail("array", "t must be a table or nil, got %s", type(t))
  end
  local ok, r = pcall(setmetatable, t or {}, core.array_mt)
  if not ok then fail("array", "t: %s", tostring(r)) end
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
local types_type, view_type = types.type, core.view_type

--- The DynamoDB type of a value ("S", "N", "B", "BOOL", "NULL", "M", "L",
-- "SS", "NS", "BS"), nil for a value no item can hold; for a view (what a
-- Lua filter is given), "M" or "L".
-- @param v any value
-- @treturn ?string the type
-- @raise when v is a view used after its filter call returned
function M.type(v)
  if type(v) == "userdata" then
    local t = view_type(v)
    if t then return t end
  end
  return types_type(v)
end

-- Item views -----------------------------------------------------------
--
-- A Lua filter of a query or a scan is given a view of each item: a
-- read-only userdata over the stored bytes, valid during that call only.
-- `v.name`, `v.data.count`, `v.tags[2]`, `#v.tags` decode only what they
-- touch; maps and lists come as views too, everything else as the Lua
-- value a decoded item holds.  Assigning to a view, or using it after its
-- filter call has returned, raises.  An item the filter accepts reaches
-- the loop as a table.

--- Iterate a view (or a table) on every Lua version: a map's attributes
-- in stored order, a list's elements with their positions from 1.  For a
-- table, the same as `pairs`.  (`pairs(view)` works where Lua honours
-- `__pairs`: 5.2 and later.)
-- @function pairs
-- @param v a view or a table
-- @return iterator, v, nil
-- @raise when v is a view used after its filter call returned
M.pairs = core.view_pairs

--- A view copied into tables (maps and lists all the way down), to keep
-- past the filter call; any other value is returned as it is.
-- @function totable
-- @param v a view or any value
-- @return the copy, or v
-- @raise when v is a view used after its filter call returned
M.totable = core.view_totable
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

-- ------------------------------------------------------------- opening

local OPEN_OPTS = {
  pk = true, sk = true, ttl = true, clock = true, gsi = true, lsi = true,
  sync = true, readonly = true, map_size = true, max_readers = true,
  prefetch = true, progress = true, listener_error = true, stream = true,
  flush_ms = true, checkpoint_bytes = true, max_item_size = true,
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
--   returns), "normal" (the commits of the last `flush_ms` may be lost to
--   a crash of the machine) or "off" (those since the last checkpoint may
--   be); no mode can corrupt the database (see the README's durability
--   modes).
-- * `flush_ms`: with sync "normal", the log is flushed at most this many
--   milliseconds after a commit (default 100).  `checkpoint_bytes`: a
--   checkpoint comes once the log, or the pages written, since the last
--   reach this many bytes (default 64 MiB), or after 30 seconds.
-- * `max_item_size`: the largest item this handle writes, in bytes as
--   DynamoDB counts them (attribute names and values: strings and binary
--   values their bytes, numbers about one byte per two digits, lists and
--   maps 3 bytes plus one per element); a larger put, update or
--   transaction write is a "ValidationError" ("Item size has exceeded the
--   maximum allowed size ...") and writes nothing.  Default: no limit.
--   DynamoDB's is 400 KB (409600), which `dynafile serve` and the DynamoDB
--   backend use.
-- * `readonly`: open without write access.
-- * `map_size`: the initial map size in bytes (the map grows by itself);
--   `max_readers`: reader slots, used by the first opener of the
--   directory.
-- * `prefetch`: how much of the data file the first open of the directory
--   in this process asks the kernel to read ahead in the background, in
--   bytes (default 256 MiB, never more than a quarter of the memory;
--   skipped when the file is cached already), or `false` for no
--   read-ahead (a database much larger than the memory, read at random).
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
  opts = options(fn, opts, OPEN_OPTS)
  -- the key names as given; the binding applies the defaults
  local c = {}
  if opts.pk ~= nil then
    if type(opts.pk) ~= "string" or opts.pk == "" then fail(fn, "pk must be an attribute name") end
    c.pk = opts.pk
  end
  if opts.sk ~= nil then
    if opts.sk ~= false and (type(opts.sk) ~= "string" or opts.sk == "") then
      fail(fn, "sk must be an attribute name or false")
    end
    c.sk = opts.sk
  end
  if type(opts.ttl) == "string" then
    if opts.ttl == "" then fail(fn, "ttl must be an attribute name or a function") end
    c.ttl = opts.ttl
  elseif type(opts.ttl) ~= "function" and opts.ttl ~= nil then
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
  for _, k in ipairs { "map_size", "max_readers", "flush_ms", "checkpoint_bytes",
    "max_item_size" } do
    local v = opts[k]
    if v ~= nil and (type(v) ~= "number" or v < 1 or v ~= math_floor(v) or v == math_huge) then
      fail(fn, "%s must be a positive integer", k)
    end
    c[k] = v
  end
  local pf = opts.prefetch
  if pf ~= nil and pf ~= false and (type(pf) ~= "number" or pf < 1 or pf ~= math_floor(pf)
      or pf == math_huge) then
    fail(fn, "prefetch must be false or a positive integer (bytes)")
  end
  c.prefetch = pf
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
  if not h then
    if code == "InvalidArgument" then fail(fn, "%s", msg) end
    return nil, msg, code
  end
  return handle.new(h, path, opts)
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
    fail("drop_index", "db: expected a database handle")
  end
  return db:drop_index(name)
end

return M
