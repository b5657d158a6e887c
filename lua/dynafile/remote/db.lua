--- dynafile.remote.db: a handle on a DynamoDB table with the API of a
-- local dynafile database.
--
-- `dynafile.open("dynamodb://TABLE", opts)` lands here.  Every method of a
-- local handle exists; each either does what the local one does, through
-- DynamoDB's operations, or returns `nil, message, "NotSupported"` saying
-- why.  Where DynamoDB's semantics differ the README's table says so.
--
-- Lua code the server cannot run -- condition functions, update
-- functions, `db:transaction(fn)`, condition strings with a regular
-- expression, list `add`/`delete` -- runs here, optimistically: the item
-- is read (strongly consistent), the code runs on it, and the write is
-- conditional on the item being exactly as read (every attribute equal);
-- when another writer got there first the read and the code run again.
--
-- Invariants: a call reports success only for a write DynamoDB applied
-- once; `ConditionalCheckFailed` only for one it did not apply; when a
-- lost response leaves that undecidable for a write that must not be
-- repeated, `UnknownOutcome`.  Listeners hear a write only after DynamoDB
-- acknowledged it.
-- @module dynafile.remote.db

local update = require "dynafile.update"
local errors = require "dynafile.errors"
local listeners = require "dynafile.listeners"
local client = require "dynafile.remote.client"
local credentials = require "dynafile.remote.credentials"
local expr = require "dynafile.remote.expr"
local http = require "dynafile.remote.http"
local projection = require "dynafile.remote.projection"
local tables = require "dynafile.remote.table"
local values = require "dynafile.remote.values"

local error, type, pairs, ipairs, tostring, pcall, select =
  error, type, pairs, ipairs, tostring, pcall, select
local setmetatable, getmetatable = setmetatable, getmetatable
local string_format, table_concat = string.format, table.concat
local math_random, math_min, math_floor, math_huge = math.random, math.min, math.floor, math.huge
local os_time = os.time
local unpack = table.unpack or unpack -- luacheck: ignore 143

local dynafile_type = require("dynafile.types").type
local core_kind = require("dynafile.core").kind
local ddb_expr = require "dynafile.expr"
local take_item = values.take_item
local encode_value, decode_item, encode_item = values.encode_value, values.decode_item,
  values.encode_item
local deep_equal = expr.deep_equal

local M = {}

-- ------------------------------------------------------------- errors

-- Misuse raises at the caller's line (dynafile.errors).
local raise, fail, check_opts = errors.raise, errors.fail, errors.options

local function not_supported(fn, why)
  return nil, string_format("dynafile.%s: not supported by the DynamoDB backend: %s", fn, why),
    "NotSupported"
end

local DB = {}
DB.__index = DB
DB.__name = "dynafile.remote.db"
M.DB = DB

local function check_open(self, fn)
  if getmetatable(self) ~= DB then
    raise(string_format("dynafile.%s: expected a database handle (use db:%s)", fn, fn))
  end
  if self._closed then raise(string_format("dynafile.%s: database is closed", fn)) end
  local lost = self._st.lost_writes
  if lost then
    self._st.lost_writes = nil
    raise(string_format("dynafile.%s: %s", fn, lost))
  end
end

-- Lua code the backend runs for a call -- condition and update functions,
-- a transaction's function -- may run more than once, so it may read but
-- not write through the database: `guarded` marks the running coroutine
-- while such code runs, and check_writable refuses its writes, as a local
-- database does (where that code holds the write transaction).
local co_running = coroutine.running
local function pack(...) return { n = select("#", ...), ... } end

local function guarded(self, f, ...)
  local busy = self._st.busy
  local co = co_running() or "main"
  busy[co] = (busy[co] or 0) + 1
  local res = pack(pcall(f, ...))
  busy[co] = busy[co] - 1
  if busy[co] == 0 then busy[co] = nil end
  if not res[1] then error(res[2], 0) end
  return unpack(res, 2, res.n)
end

local function check_writable(self, fn)
  if self._readonly then
    raise(string_format("dynafile.%s: the database is opened read-only", fn))
  end
  if self._st.busy[co_running() or "main"] then
    raise(string_format("dynafile.%s: the write transaction of this database is held by this "
      .. "thread (a write from inside a transaction, an update function or a condition?); "
      .. "write through the transaction, or after it ends", fn))
  end
end

-- ------------------------------------------------------------- keys

local function key_value_ok(v)
  local t = type(v)
  if t == "string" then return true end
  return t == "number" and v == v
end

local TYPE_NAMES = { S = "a string", N = "a number", B = "a binary value" }

-- DynamoDB's limits on key values, in bytes: a partition key (of the
-- table or an index) and a sort key.
local PK_MAX, SK_MAX = 2048, 1024

-- The byte length of a string or binary key value (nil for a number).
local function key_bytes(v)
  if type(v) == "string" then return #v end
  if dynafile_type(v) == "B" then return #v end
end

local function check_key_length(fn, name, v, max)
  local n = key_bytes(v)
  if n and n > max then
    fail(fn, "key attribute %s is too long (%d bytes, at most %d)", name, n, max)
  end
end

-- Key attributes are checked here, before a request: DynamoDB gives each
-- key attribute one type (the table's AttributeDefinitions), where a
-- local database takes strings and numbers alike.
local function check_key(self, key, fn)
  if type(key) ~= "table" then fail(fn, "key must be a table, got %s", type(key)) end
  local types, keys = self._key_types, self._keys
  for i = 1, #keys do
    local name = keys[i]
    local v = key[name]
    if v == nil then fail(fn, "key attribute %s is missing", name) end
    local want = types[name]
    if type(v) == "string" and (want == "S" or want == nil) then
      -- the common key, checked without a type lookup
      if #v > (i == 1 and PK_MAX or SK_MAX) then
        check_key_length(fn, name, v, i == 1 and PK_MAX or SK_MAX)
      end
    elseif want == "B" then
      if dynafile_type(v) ~= "B" then
        fail(fn, "key attribute %s must be a binary value (the table's %s is of type B), not %s",
          name, name, type(v))
      end
      check_key_length(fn, name, v, i == 1 and PK_MAX or SK_MAX)
    elseif not key_value_ok(v) and dynafile_type(v) ~= "N" then
      fail(fn, "key attribute %s must be a string or a number, not %s", name,
        v ~= v and "NaN" or type(v))
    elseif want and dynafile_type(v) ~= want then
      fail(fn, "key attribute %s must be %s: the table's %s is of type %s (DynamoDB gives a key "
        .. "attribute one type), not %s", name, TYPE_NAMES[want], name, want, type(v))
    else
      check_key_length(fn, name, v, i == 1 and PK_MAX or SK_MAX)
    end
  end
end

-- An item to write: its key, and its index key attributes against
-- DynamoDB's key limits (their types are the server's to check: it
-- refuses an item whose index key attribute has another type).
local function check_item(self, item, fn)
  check_key(self, item, fn)
  for _, d in pairs(self._schema.indexes) do
    if d.pk then check_key_length(fn, d.pk, item[d.pk], PK_MAX) end
    if d.sk then check_key_length(fn, d.sk, item[d.sk], SK_MAX) end
  end
end

-- The key table of an item (and of an index's key): a local database's
-- rule, on the same handle fields (_pk, _sk, _schema).
local key_of = require("dynafile.handle").key_of

local function encode_key(self, key, fn)
  local k = {}
  local keys = self._keys
  for i = 1, #keys do
    local name = keys[i]
    local v = key[name]
    -- strings, the common key, directly
    k[name] = type(v) == "string" and { S = v } or encode_value(v, fn, name)
  end
  return k
end

local json = client.json

-- A key as JSON text ({"PK":{"S":"a"},"SK":{"N":"1"}}), for a request
-- written as text: a string quoted by cjson (cheaper than looking for
-- what needs escaping), any other value through its AttributeValue and
-- cjson.  (The key was checked.)
local function value_json(v, fn, name)
  if type(v) == "string" then return '{"S":' .. json.encode(v) .. "}" end
  return json.encode(encode_value(v, fn, name))
end
local function key_json(self, key, fn)
  local pk, sk = self._pk, self._sk
  local t = "{" .. self._json_pk .. ":" .. value_json(key[pk], fn, pk)
  if sk then t = t .. "," .. self._json_sk .. ":" .. value_json(key[sk], fn, sk) end
  return t .. "}"
end

-- A string naming the item a key points at: a number by its canonical
-- digits, whatever its form (1 and 1.0, the float 2^60, the integer
-- 1 << 60 and the decimal 1152921504606846976 are each one number), a
-- binary value by its bytes.
local function identity(self, key)
  local parts = {}
  for i, name in ipairs(self._keys) do
    local v = key[name]
    local tv = type(v)
    if tv == "string" then
      parts[i] = "s" .. v
    elseif tv == "number" or dynafile_type(v) == "N" then
      parts[i] = "n" .. values.number_string(v)
    elseif dynafile_type(v) == "B" then
      parts[i] = "b" .. v:bytes()
    else
      parts[i] = "s" .. tostring(v)
    end
  end
  return table_concat(parts, "\0")
end

-- ------------------------------------------------------------- time, TTL

local function now(self)
  local clock = self._clock
  if clock then return clock() end
  return os_time()
end

-- Whether an item is expired (it is then invisible, as locally).
local TTL_MAX_AGE = 5 * 365 * 24 * 3600

local function expired(self, item, t)
  if not item then return false end
  local f = self._ttl_fn
  if f then return f(item, t or now(self)) and true or false end
  local a = self._ttl_attr
  if a then
    local v = item[a]
    if type(v) ~= "number" then return false end
    t = t or now(self)
    -- (DynamoDB's rule, a local database's too: a TTL further than five
    -- years in the past never expires)
    return v < t and v >= t - TTL_MAX_AGE
  end
  return false
end

-- ------------------------------------------------------------- requests

local function call(self, op, req, mode, deadline)
  return self._client:call(op, req, mode, deadline)
end

-- The time by which a call that starts now must return: every request it
-- makes (a read, a write, their retries) shares it.
local function deadline_of(self)
  return http.now() + self._client.timeout
end

local function prefix(fn, msg)
  if msg and not msg:find("^dynafile%.") then return "dynafile." .. fn .. ": " .. msg end
  return msg
end

-- The raw stored item (expired or not), read strongly consistent.
local function read_raw(self, fn, key, deadline)
  local r, msg, code = call(self, "GetItem", {
    TableName = self._table, Key = encode_key(self, key, fn), ConsistentRead = true,
  }, nil, deadline)
  if not r then return nil, prefix(fn, msg), code end
  return r.Item and take_item(r.Item) or false
end

-- ------------------------------------------------------------- listeners

local shared = {} -- per table (endpoint and name): listeners, delivery queue

-- (dynafile.listeners, as for a local database)
local has_listeners, dispatch = listeners.has_listeners, listeners.dispatch

-- ------------------------------------------------------------- conditions

-- A condition: a function, or a string compiled into a tree.  Returns
-- the compiled form, or nil, message (a string that does not parse).
local function compile_condition(fn, c)
  if type(c) == "function" then return { fn = c } end
  -- a dynafile.expr: DynamoDB's own syntax, evaluated by the server only
  -- (compiled here first, for a local database's messages)
  if ddb_expr.is(c) then
    local _, msg = ddb_expr.compiled(c, "condition")
    if msg then return nil, string_format("dynafile.%s: condition: %s", fn, msg) end
    return { ddb = c, server = true }
  end
  -- compiled by dynafile.ddb_args: no text to send, evaluated here
  if core_kind(c) == "expr" then
    return { fn = function(item) return c:eval(item) end }
  end
  if type(c) ~= "string" then
    fail(fn, "condition must be a function, an expression string or a dynafile.expr, got %s",
      type(c))
  end
  local tree, msg = expr.compile(c)
  if not tree then
    return nil, string_format("dynafile.%s: condition: %s", fn, (msg:gsub("^filter: ", "")))
  end
  return { tree = tree, server = not expr.has_regex(tree) }
end

-- Conditions that a value at path p is exactly v.  Lists and maps are
-- compared by size and element by element when `flat` (some DynamoDB
-- implementations, dynalite among them, do not compare documents with =),
-- else as whole values.
local function equal_parts(b, parts, p, v, flat, where)
  if flat and values.is_document(v) then
    local list = values.is_list(v)
    parts[#parts + 1] = "attribute_type(" .. p .. ", " .. b:value(list and "L" or "M", "condition",
      where) .. ") AND size(" .. p .. ") = " .. b:value(values.size_of(v), "condition", where)
    if list then
      for i = 1, #v do equal_parts(b, parts, p .. "[" .. (i - 1) .. "]", v[i], flat, where) end
    else
      for k, x in pairs(v) do equal_parts(b, parts, p .. "." .. b:name(k), x, flat, where) end
    end
    return
  end
  parts[#parts + 1] = p .. " = " .. b:value(v, "condition", where)
end

-- DynamoDB's limit on the length of an expression.
local EXPRESSION_MAX = 4096

-- The condition "the item is exactly `raw`" (false: absent).
local function image_condition(self, b, raw)
  local pk = b:name(self._pk)
  if not raw then return "attribute_not_exists(" .. pk .. ")" end
  local is_key = self._is_key
  for _, flat in ipairs { true, false } do
    local parts = { "attribute_exists(" .. pk .. ")" }
    local mark_n, mark_v = b.nn, b.nv
    for k, v in pairs(raw) do
      if not is_key[k] then equal_parts(b, parts, b:name(k), v, flat, k) end
    end
    local c = table_concat(parts, " AND ")
    if #c <= EXPRESSION_MAX - 512 or not flat then return c end
    -- too long compared element by element: drop those values, compare whole
    for i = mark_v + 1, b.nv do b.v[":v" .. i] = nil end
    b.nv = mark_v
    local _ = mark_n
  end
end

-- Whether a condition holds on the item as read: true or false; "server"
-- for a dynafile.expr, which only the server evaluates (the write then
-- carries it next to the image condition, see with_user).
local function holds_here(cond, visible)
  if cond.ddb then return "server" end
  if cond.fn then return cond.fn(visible) and true or false end
  return expr.eval(cond.tree, visible)
end

-- An image condition joined with a dynafile.expr condition.
local function with_user(b, image, cond, fn)
  if not cond or not cond.ddb then return image end
  return "(" .. image .. ") AND (" .. b:embed(cond.ddb, fn) .. ")"
end

local function cond_failed(fn)
  return nil, string_format("dynafile.%s: the condition failed", fn), "ConditionalCheckFailed"
end

-- Send a conditional or otherwise delicate write.  `idempotent`: applying
-- it twice leaves what applying it once does; then a lost response is
-- answered by sending it again, and a second answer of
-- ConditionalCheckFailed is checked with `verify(current_item_or_false)`
-- (true: the first attempt was applied).  Otherwise a lost response is
-- UnknownOutcome.
local function send_write(self, fn, op, req, idempotent, verify, deadline)
  deadline = deadline or deadline_of(self)
  if idempotent and not req.ConditionExpression then
    local r, msg, code, e = call(self, op, req, "idempotent", deadline)
    if not r then return nil, prefix(fn, msg), code, e end
    return r
  end
  local r, msg, code, e = call(self, op, req, "once", deadline)
  if r then return r end
  if code ~= "UnknownOutcome" or not idempotent then return nil, prefix(fn, msg), code, e end
  for _ = 1, 3 do
    r, msg, code, e = call(self, op, req, "once", deadline)
    if r then return r end
    if code == "ConditionalCheckFailed" then
      local cur = verify and read_raw(self, fn, req.Key and decode_item(req.Key)
        or key_of(self, decode_item(req.Item)), deadline)
      if cur ~= nil and verify(cur) then return { verified = true, current = cur } end
      return nil, prefix(fn, "the write's first response was lost and its condition now fails: "
        .. "it may or may not have been applied"), "UnknownOutcome"
    end
    if code ~= "UnknownOutcome" then return nil, prefix(fn, msg), code, e end
  end
  return nil, prefix(fn, msg), code, e
end

-- ------------------------------------------------------------- opening

-- DynamoDB's item size limit (400 KB), which the service keeps.
local MAX_ITEM_SIZE = 400 * 1024

local OPEN_OPTS = {
  pk = true, sk = true, ttl = true, clock = true, gsi = true, lsi = true, readonly = true,
  listener_error = true,
  -- the DynamoDB backend's own
  endpoint = true, region = true, credentials = true, profile = true, timeout = true,
  max_attempts = true, types = true, billing = true, create = true, wait = true,
  consistent = true, tls = true, optimistic_retries = true,
  -- DynamoDB's own item limit, the only one it can keep
  max_item_size = true,
  -- local only: accepted and refused with a reason
  sync = true, map_size = true, max_readers = true, prefetch = true, progress = true,
  stream = true, flush_ms = true, checkpoint_bytes = true,
}
local LOCAL_ONLY = {
  sync = "durability is DynamoDB's", map_size = "there is no map", max_readers = "there are "
    .. "no reader slots", prefetch = "there is no data file to read ahead",
  progress = "index backfill runs in DynamoDB",
  stream = "the change log is local; use DynamoDB Streams",
  flush_ms = "durability is DynamoDB's", checkpoint_bytes = "there is no redo log",
}

local function is_loopback(host)
  return host == "localhost" or host:match("^127%.") ~= nil or host == "::1"
end

--- Open a DynamoDB table as a dynafile database (see `dynafile.open`).
-- @tparam string url "dynamodb://TABLE"
-- @tparam[opt] table opts the options of a local open that apply (`pk`,
--   `sk`, `gsi`, `lsi`, `ttl`, `clock`, `readonly`, `listener_error`) and
--   the backend's: `endpoint`, `region`, `credentials`, `profile`,
--   `timeout`, `max_attempts`, `types`, `billing`, `create`, `wait`,
--   `consistent`, `tls`, `optimistic_retries`; `max_item_size` only as
--   DynamoDB's own 409600 (DynamoDB refuses larger items itself:
--   "ValidationError", "Item size has exceeded the maximum allowed size")
-- @tparam[opt] table index_defs the `gsi` and `lsi` options as
--   `dynafile.open` has checked them: a list of `{name, kind, pk, sk,
--   projection}`
-- @treturn table|nil the handle
-- @treturn string message on failure
-- @treturn string code on failure: "NotSupported" (a local-only option),
--   "ValidationError" (the options disagree with the table), "AccessDenied"
--   (no credentials), or a request's code
-- @raise on misuse: a malformed URL or table name, an unknown option or
--   one of the wrong type
function M.open(url, opts, index_defs)
  local fn = "open"
  local name = url:match("^dynamodb://([%w_%.%-]+)$")
  if not name then
    fail(fn, "'%s': the table name after dynamodb:// must be 3-255 letters, digits, _ . -", url)
  end
  if #name < 3 or #name > 255 then fail(fn, "table name must be 3 to 255 characters long") end
  opts = check_opts(fn, opts, OPEN_OPTS)
  for k, why in pairs(LOCAL_ONLY) do
    if opts[k] ~= nil then
      return not_supported(fn, string_format("option %s (%s)", k, why))
    end
  end
  local mis = opts.max_item_size
  if mis ~= nil then
    if type(mis) ~= "number" or mis < 1 or mis ~= math_floor(mis) or mis == math_huge then
      fail(fn, "max_item_size must be a positive integer")
    end
    if mis ~= MAX_ITEM_SIZE then
      return not_supported(fn, string_format("option max_item_size %d (DynamoDB keeps its "
        .. "own limit, %d bytes; only that value can be given)", mis, MAX_ITEM_SIZE))
    end
  end
  local o = { indexes = {}, types = {} }
  if opts.pk ~= nil then
    if type(opts.pk) ~= "string" or opts.pk == "" then fail(fn, "pk must be an attribute name") end
    o.pk = opts.pk
  end
  if opts.sk ~= nil then
    if opts.sk ~= false and (type(opts.sk) ~= "string" or opts.sk == "") then
      fail(fn, "sk must be an attribute name or false")
    end
    o.sk = opts.sk
  elseif o.pk then
    o.sk = "SK"
  end
  local ttl_fn
  if type(opts.ttl) == "string" and opts.ttl ~= "" then
    o.ttl_attr = opts.ttl
  elseif type(opts.ttl) == "function" then
    ttl_fn = opts.ttl
  elseif opts.ttl ~= nil then
    fail(fn, "ttl must be an attribute name or a function, got %s", type(opts.ttl))
  end
  if opts.clock ~= nil and type(opts.clock) ~= "function" then
    fail(fn, "clock must be a function")
  end
  if opts.readonly ~= nil and type(opts.readonly) ~= "boolean" then
    fail(fn, "readonly must be a boolean")
  end
  if opts.listener_error ~= nil and type(opts.listener_error) ~= "function" then
    fail(fn, "listener_error must be a function")
  end
  if opts.types ~= nil then
    if type(opts.types) ~= "table" then
      fail(fn, "types must be a table {attribute = \"S\"|\"N\"|\"B\"}")
    end
    for k, v in pairs(opts.types) do
      if type(k) ~= "string" or (v ~= "S" and v ~= "N" and v ~= "B") then
        fail(fn, "types: %s must be \"S\", \"N\" or \"B\"", tostring(k))
      end
      o.types[k] = v
    end
  end
  for _, k in ipairs { "timeout", "wait" } do
    local v = opts[k]
    if v ~= nil and (type(v) ~= "number" or v ~= v or v <= 0 or v == math_huge) then
      fail(fn, "%s must be a positive number of seconds", k)
    end
  end
  for _, k in ipairs { "max_attempts", "optimistic_retries" } do
    local v = opts[k]
    if v ~= nil and (type(v) ~= "number" or v < 1 or v ~= math_floor(v) or v == math_huge) then
      fail(fn, "%s must be a positive integer", k)
    end
  end
  if opts.billing ~= nil and opts.billing ~= "on_demand" and (type(opts.billing) ~= "table"
      or type(opts.billing.read) ~= "number" or type(opts.billing.write) ~= "number") then
    fail(fn, "billing must be \"on_demand\" or {read = units, write = units}")
  end
  if opts.endpoint ~= nil and type(opts.endpoint) ~= "string" then
    fail(fn, "endpoint must be a URL string")
  end
  if opts.credentials ~= nil then
    local c = opts.credentials
    if type(c) ~= "table" or type(c.access_key_id) ~= "string"
        or type(c.secret_access_key) ~= "string"
        or (c.session_token ~= nil and type(c.session_token) ~= "string") then
      fail(fn, "credentials must be {access_key_id = s, secret_access_key = s "
        .. "[, session_token = s]}")
    end
  end
  o.indexes = index_defs or {}
  o.billing, o.create, o.wait = opts.billing, opts.create, opts.wait

  local region = credentials.region(opts)
  if not region then
    if not opts.endpoint then
      return nil, "dynafile.open: no region: give the region option, or set AWS_REGION",
        "ValidationError"
    end
    region = "us-east-1"
  end
  local creds, where = credentials.resolve(opts)
  if not creds then
    local ep = opts.endpoint and http.parse_url(opts.endpoint)
    if ep and is_loopback(ep.host) then
      -- a local server (dynalite, `dynafile serve`) takes any key
      creds = { access_key_id = "dynafile", secret_access_key = "dynafile" }
    else
      return nil, "dynafile.open: " .. where, "AccessDenied"
    end
  end
  local c, why = client.new {
    endpoint = opts.endpoint, region = region, credentials = creds, timeout = opts.timeout,
    max_attempts = opts.max_attempts, tls = opts.tls,
  }
  if not c then fail(fn, "%s", why) end
  local schema, msg, code = tables.ensure(c, name, o)
  if not schema then
    c:close()
    return nil, prefix(fn, msg), code
  end
  local keys = { schema.pk, schema.sk }
  local sid = c.url .. "\0" .. name
  local st = shared[sid]
  if not st then
    st = { listeners = {}, queue = {}, qhead = 1, qtail = 0, handles = 0, dispatching = false,
           busy = setmetatable({}, { __mode = "k" }),
           open_handles = setmetatable({}, { __mode = "k" }) }
    shared[sid] = st
  end
  st.handles = st.handles + 1
  local self = setmetatable({
    _client = c, _table = name, _url = url, _sid = sid, _st = st,
    _schema = schema, _pk = schema.pk, _sk = schema.sk, _keys = keys,
    _key_types = { [schema.pk] = schema.types[schema.pk],
                   [schema.sk or false] = schema.sk and schema.types[schema.sk] or nil },
    _is_key = { [schema.pk] = true, [schema.sk or false] = schema.sk and true or nil },
    _ttl_attr = schema.ttl, _ttl_fn = ttl_fn, _clock = opts.clock,
    -- the JSON text of the names, and of a GetItem's start
    _json_pk = json.encode(schema.pk), _json_sk = schema.sk and json.encode(schema.sk),
    _json_get = '{"TableName":' .. json.encode(name) .. ',"ConsistentRead":'
      .. tostring(opts.consistent ~= false) .. ',"Key":',
    _readonly = opts.readonly or false, _listener_error = opts.listener_error,
    _consistent = opts.consistent ~= false,
    _retries = opts.optimistic_retries or 16,
    _closed = false,
  }, DB)
  st.open_handles[self] = true
  return self
end

-- ------------------------------------------------------------- reads

-- A projection option (nil: none), or raises, or nil, message.
local function projection_opt(fn, pj)
  if pj == nil then return false end
  local p, msg = projection.compile(fn, pj)
  if not p then return nil, msg end
  return p
end

-- The attributes a read asks the server for besides a projection's own:
-- the partition key (so an existing item never comes back empty) and the
-- TTL attribute.  A TTL function judges whole items: no projection then.
local function get_projection(self, p, b)
  if not p or self._ttl_fn then return nil end
  local extra = { [self._pk] = true }
  if self._ttl_attr then extra[self._ttl_attr] = true end
  return projection.expression(p, b, extra)
end

local GET_OPTS = { projection = true }

--- Read the item with `key` (strongly consistent unless opened with
-- `consistent = false`).
-- @tparam table key the key attributes
-- @tparam[opt] table opts `projection`: a list of paths or a
--   `dynafile.expr` ProjectionExpression (sent to DynamoDB; the item comes
--   back as a local database projects it)
-- @treturn table|nil the item, or nil when missing or expired
-- @treturn string message on failure
-- @treturn string code on failure: "ValidationError" (a projection that
--   does not compile), or a request's code
-- @raise on an invalid key or option, or a closed handle
function DB:get_item(key, opts)
  local fn = "get_item"
  check_open(self, fn)
  check_key(self, key, fn)
  local p, pmsg = false
  if opts ~= nil then
    opts = check_opts(fn, opts, GET_OPTS)
    p, pmsg = projection_opt(fn, opts.projection)
    if p == nil then return nil, pmsg, "ValidationError" end
  end
  local req
  if p then
    req = { TableName = self._table, Key = encode_key(self, key, fn),
      ConsistentRead = self._consistent }
    local b = expr.names()
    req.ProjectionExpression = get_projection(self, p, b)
    b:into(req)
  else
    -- the common read, written as JSON text at once
    req = self._json_get .. key_json(self, key, fn) .. "}"
  end
  local r, msg, code = call(self, "GetItem", req)
  if not r then return nil, prefix(fn, msg), code end
  local item = r.Item and take_item(r.Item)
  if item and (self._ttl_attr or self._ttl_fn) and expired(self, item) then return nil end
  if item and p then return projection.apply(p, item) end
  return item
end

local function backoff(self, attempt)
  local c = self._client
  http.sleep(math_random() * math_min(c.backoff_cap, c.backoff * 2 ^ attempt))
end

--- Read several items: chunks of 100 keys, UnprocessedKeys read again
-- after a backoff.  Not one snapshot: each item is read strongly
-- consistent on its own.
-- @tparam table keys a list of key tables
-- @tparam[opt] table opts `projection`, as get_item takes it
-- @treturn table|nil one entry per key, in order: the item, or false
--   when missing or expired
-- @treturn string message on failure
-- @treturn string code on failure: "ValidationError", "Throttled"
--   (unprocessed keys until the timeout), or a request's code
-- @raise on an invalid key or option, or a closed handle
function DB:batch_get_item(keys, opts)
  local fn = "batch_get_item"
  check_open(self, fn)
  if type(keys) ~= "table" then fail(fn, "keys must be a list of keys") end
  local p, pmsg = false
  if opts ~= nil then
    opts = check_opts(fn, opts, GET_OPTS)
    p, pmsg = projection_opt(fn, opts.projection)
    if p == nil then return nil, pmsg, "ValidationError" end
  end
  local n = #keys
  local slot, order = {}, {}
  for i = 1, n do
    local k = keys[i]
    if type(k) ~= "table" then fail(fn, "keys[%d] must be a key table, got %s", i, type(k)) end
    check_key(self, k, fn)
    local id = identity(self, k)
    if not slot[id] then
      slot[id] = {}
      order[#order + 1] = { id = id, key = encode_key(self, k, fn) }
    end
    local s = slot[id]
    s[#s + 1] = i
  end
  local out = {}
  for i = 1, n do out[i] = false end
  local t = now(self)
  local pos = 1
  local pe, pnames
  if p then
    -- the whole key: items are matched to their keys by it
    local b = expr.names()
    local extra = { [self._pk] = true, [self._sk or false] = self._sk and true or nil }
    if self._ttl_attr then extra[self._ttl_attr] = true end
    if not self._ttl_fn then pe = projection.expression(p, b, extra) end
    pnames = b.n
  end
  while pos <= #order do
    local chunk = {}
    for j = pos, math_min(pos + 99, #order) do chunk[#chunk + 1] = order[j].key end
    pos = pos + #chunk
    local pending = chunk
    local attempt = 0
    local deadline = http.now() + self._client.timeout
    while pending and #pending > 0 do
      local r, msg, code = call(self, "BatchGetItem", { RequestItems = {
        [self._table] = { Keys = pending, ConsistentRead = self._consistent,
          ProjectionExpression = pe, ExpressionAttributeNames = pe and pnames or nil } } })
      if not r then return nil, prefix(fn, msg), code end
      for _, av in ipairs(r.Responses and r.Responses[self._table] or {}) do
        local item = take_item(av)
        if not expired(self, item, t) then
          -- each entry its own table, as locally (the same key twice too)
          for j, i in ipairs(slot[identity(self, item)] or {}) do
            if p then
              out[i] = projection.apply(p, item)
            else
              out[i] = j == 1 and item or update.copy(item)
            end
          end
        end
      end
      local u = r.UnprocessedKeys and r.UnprocessedKeys[self._table]
      pending = u and u.Keys
      if pending and #pending > 0 then
        if http.now() >= deadline then
          return nil, "dynafile.batch_get_item: DynamoDB kept returning unprocessed keys "
            .. "(throttled) until the timeout", "Throttled"
        end
        attempt = attempt + 1
        backoff(self, attempt)
      end
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
local CONDS = { begins_with = 1, eq = 2, lt = 3, le = 4, gt = 5, ge = 6, between = 7 }
local KEY_OP = { eq = "=", lt = "<", le = "<=", gt = ">", ge = ">=" }

local function key_arg(fn, name, v)
  local tv = type(v)
  if tv ~= "string" and tv ~= "number" then
    -- a decimal, an int64_t cdata or a binary value: key values too
    local dt = dynafile_type(v)
    if dt ~= "N" and dt ~= "B" then
      fail(fn, "%s must be a string or a number, got %s", name, tv)
    end
    return
  end
  if v ~= v then fail(fn, "%s must not be NaN", name) end
end

local function positive_int(fn, name, v)
  if type(v) ~= "number" or v < 1 or v ~= math_floor(v) or v == math_huge then
    fail(fn, "%s must be a positive integer", name)
  end
end

-- Sort-key order: numbers before strings, each in its own order, binary
-- values by their bytes.
local function key_less(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return ta == "number" end
  if ta == "table" then return a:bytes() < b:bytes() end
  return a < b
end

-- Where a sort-key value lies against a query's sort-key condition
-- `range` ({cond, v} or {cond = "between", lo, hi}): "in", "below" (before
-- every key it admits) or "above".
local function against(range, v)
  local c = range.cond
  if c == "between" then
    if key_less(v, range.lo) then return "below" end
    if key_less(range.hi, v) then return "above" end
    return "in"
  elseif c == "begins_with" then
    local p = range.v
    if type(v) == "string" and v:sub(1, #p) == p then return "in" end
    return key_less(v, p) and "below" or "above"
  end
  local x = range.v
  local less, more = key_less(v, x), key_less(x, v)
  if c == "eq" then return less and "below" or more and "above" or "in" end
  if c == "lt" then return (less and "in") or "above" end
  if c == "le" then return more and "above" or "in" end
  if c == "gt" then return more and "in" or "below" end
  return less and "below" or "in" -- ge
end

-- The request and reading plan of a query or scan; raises on misuse,
-- returns nil, message, code for a filter string that does not parse or
-- cannot run here.
local function build_read(self, fn, pk, opts, scanning)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then fail(fn, "options must be a table, got %s", type(opts)) end
  local allowed = scanning and SCAN_OPTS or QUERY_OPTS
  local cond
  for k in pairs(opts) do
    if not allowed[k] then fail(fn, "unknown option '%s'", tostring(k)) end
    if CONDS[k] then
      if cond then
        local a, b = cond, k
        if CONDS[a] > CONDS[b] then a, b = b, a end
        fail(fn, "only one key condition allowed (%s and %s)", a, b)
      end
      cond = k
    end
  end
  local b = expr.names()
  local req = { TableName = self._table }
  local plan = { req = req, names = b, db = self }
  local index = opts.index
  local pk_attr, sk_attr = self._pk, self._sk
  if index ~= nil then
    if type(index) ~= "string" then fail(fn, "index must be an index name") end
    local d = self._schema.indexes[index]
    if not d then fail(fn, "index: no index named %s", index) end
    req.IndexName = index
    plan.index = index
    if d.kind == "gsi" then pk_attr = d.pk end
    sk_attr = d.sk
    if d.kind == "gsi" then plan.gsi = true end
    -- TTL judges whole items: an index that projects the TTL attribute
    -- away (any projection short of "all", for a TTL function) has the
    -- items it returns read from the table (as locally)
    local proj, attr = d.projection, self._ttl_attr
    if self._ttl_fn then
      plan.ttl_lookup = proj ~= "all"
    elseif attr and proj ~= "all" and attr ~= self._pk and attr ~= self._sk and attr ~= d.pk
        and attr ~= d.sk then
      local listed = false
      if type(proj) == "table" then
        for _, a in ipairs(proj) do listed = listed or a == attr end
      end
      plan.ttl_lookup = not listed
    end
  end
  if self._consistent and not plan.gsi then req.ConsistentRead = true end
  local key_attrs = { [pk_attr] = true }
  if sk_attr then key_attrs[sk_attr] = true end
  local kx = opts.key_condition
  if not scanning and ddb_expr.is(pk) then
    if kx ~= nil then fail(fn, "a key condition given twice (as pk and as key_condition)") end
    kx, pk = pk, nil
  end
  local cond_v = cond and opts[cond]
  local from_expr = false
  if kx ~= nil and not scanning then
    -- a dynafile.expr KeyConditionExpression: compiled as a local database
    -- compiles it, and sent as the same range the options give
    if not ddb_expr.is(kx) then fail(fn, "key_condition must be a dynafile.expr") end
    if cond then fail(fn, "only one key condition allowed (%s and key_condition)", cond) end
    if pk ~= nil then fail(fn, "the partition key comes from key_condition; pass nil") end
    local kc, kmsg = ddb_expr.key_condition(kx, pk_attr, sk_attr)
    if not kc then return nil, string_format("dynafile.%s: %s", fn, kmsg), "ValidationError" end
    pk, cond, from_expr = kc.pk, kc.cond, true
    cond_v = cond == "between" and { kc.lo, kc.hi } or kc.lo
  end
  if not scanning then
    if not from_expr then key_arg(fn, "partition key", pk) end
    check_key_length(fn, pk_attr, pk, PK_MAX)
    local parts = { b:name(pk_attr) .. " = " .. b:value(pk, fn, "partition key") }
    if cond then
      local v = cond_v
      if not sk_attr then fail(fn, "%s: the table has no sort key", cond) end
      local s = b:name(sk_attr)
      if cond == "between" then
        if type(v) ~= "table" or v[1] == nil or v[2] == nil then
          fail(fn, "between must be a list {lo, hi}")
        end
        if not from_expr then
          key_arg(fn, "between[1]", v[1])
          key_arg(fn, "between[2]", v[2])
        end
        parts[2] = s .. " BETWEEN " .. b:value(v[1], fn) .. " AND " .. b:value(v[2], fn)
        plan.range = { cond = cond, lo = v[1], hi = v[2] }
        -- DynamoDB refuses lo > hi; the range is empty
        if key_less(v[2], v[1]) then plan.done = true end
      elseif cond == "begins_with" then
        if not from_expr then
          key_arg(fn, cond, v)
          if type(v) ~= "string" then fail(fn, "begins_with must be a string") end
        end
        parts[2] = "begins_with(" .. s .. ", " .. b:value(v, fn) .. ")"
        plan.range = { cond = cond, v = v }
      else
        if not from_expr then key_arg(fn, cond, v) end
        parts[2] = s .. " " .. KEY_OP[cond] .. " " .. b:value(v, fn)
        plan.range = { cond = cond, v = v }
      end
    end
    local f = opts.scan_index_forward
    if f ~= nil and type(f) ~= "boolean" then fail(fn, "scan_index_forward must be a boolean") end
    if f == false then req.ScanIndexForward = false end
    local start = opts.starts_with
    if start ~= nil then
      key_arg(fn, "starts_with", start)
      if sk_attr then
        if not cond then
          parts[2] = b:name(sk_attr) .. (f == false and " <= " or " >= ") .. b:value(start, fn)
          plan.range = { cond = f == false and "le" or "ge", v = start }
        else
          -- two conditions on the sort key: DynamoDB takes one, the other
          -- skips items here (they arrive in order)
          plan.skip_before, plan.skip_attr, plan.reverse = start, sk_attr, f == false
        end
      end
    end
    req.KeyConditionExpression = table_concat(parts, " AND ")
  else
    local k, n = opts.segment, opts.segments
    if (k == nil) ~= (n == nil) then fail(fn, "segment and segments go together") end
    if n ~= nil then
      positive_int(fn, "segments", n)
      positive_int(fn, "segment", k)
      if k > n then fail(fn, "segment must be in 1..segments") end
      if n > 4096 then fail(fn, "segments must be at most 4096") end
      req.Segment, req.TotalSegments = k - 1, n
    end
  end
  local limit = opts.limit
  if limit ~= nil then positive_int(fn, "limit", limit) end
  plan.limit = limit
  local after = opts.start_after
  if after ~= nil then
    if type(after) ~= "table" then fail(fn, "start_after must be a key table") end
    -- the key attributes only (of the table, and of the index): other
    -- attributes of the table given are ignored, as locally
    local esk = {}
    local names = { self._pk, self._sk or false, index and pk_attr or false,
      index and sk_attr or false }
    for i = 1, 4 do
      local kname = names[i]
      if kname and esk[kname] == nil then
        local v = after[kname]
        if v == nil then
          if i <= 2 then fail(fn, "start_after: key attribute %s is missing", kname) end
        else
          esk[kname] = encode_value(v, fn, "start_after." .. kname)
        end
      end
    end
    req.ExclusiveStartKey = esk
    -- DynamoDB refuses a start key outside the key condition; locally it
    -- is a resume point in key order: before the range the whole range
    -- follows it, past the range nothing does
    local range, v = plan.range, sk_attr and after[sk_attr]
    if range and v ~= nil then
      local where = against(range, v)
      if where ~= "in" then
        if (where == "below") == (req.ScanIndexForward ~= false) then
          req.ExclusiveStartKey = nil
        else
          plan.done = true
        end
      end
    end
  end
  local stats = opts.stats
  if stats ~= nil then
    if type(stats) ~= "table" then fail(fn, "stats must be a table") end
    stats.examined, stats.decoded, stats.pages = 0, 0, 0
    plan.stats = stats
  end
  local f = opts.filter
  if ddb_expr.is(f) then
    -- compiled as a local database compiles it (the same messages)
    local e, emsg = ddb_expr.compiled(f, "filter")
    if not e then return nil, string_format("dynafile.%s: %s", fn, emsg), "ValidationError" end
    local uses_key = false
    if not scanning then
      for a in pairs(expr.expression_names(f)) do
        if key_attrs[a] then uses_key = true end
      end
    end
    if uses_key then
      -- DynamoDB refuses key attributes in a query's filter: run it here
      plan.compiled_filter = e
    else
      req.FilterExpression = b:embed(f, fn)
    end
  elseif core_kind(f) == "expr" then
    -- compiled by dynafile.ddb_args: no text to send, evaluated here
    plan.compiled_filter = f
  elseif type(f) == "function" then
    plan.lua_filter = f
  elseif type(f) == "string" then
    local tree, msg = expr.compile(f)
    if not tree then return nil, string_format("dynafile.%s: %s", fn, msg), "ValidationError" end
    if expr.has_regex(tree) then
      return not_supported(fn, "regular expressions (=~) in filters have no DynamoDB form")
    end
    local uses_key = false
    if not scanning then
      for a in pairs(expr.attributes(tree)) do
        if key_attrs[a] then uses_key = true end
      end
    end
    if uses_key then
      -- DynamoDB refuses key attributes in a query's filter: run it here
      plan.tree = tree
    else
      req.FilterExpression = expr.translate(tree, b, fn)
    end
  elseif f ~= nil then
    fail(fn, "filter must be a function or an expression string, got %s", type(f))
  end
  if opts.projection ~= nil then
    local p, pmsg = projection_opt(fn, opts.projection)
    if not p then return nil, pmsg, "ValidationError" end
    plan.projection = p
    -- Lua code judges whole items (projected after it); otherwise the
    -- server sends what the projection covers and what is read here
    if not (plan.lua_filter or self._ttl_fn) then
      local extra = { [self._pk] = true }
      local need = { self._sk or false, pk_attr, sk_attr or false, self._ttl_attr or false }
      for _, a in ipairs(need) do
        if a then extra[a] = true end
      end
      if plan.tree then
        for a in pairs(expr.attributes(plan.tree)) do extra[a] = true end
      end
      if plan.compiled_filter then
        -- its attributes are not known here: whole items
        req.ProjectionExpression = nil
        extra = nil
      end
      if extra then req.ProjectionExpression = projection.expression(p, b, extra) end
    end
  end
  b:into(req)
  plan.here = plan.lua_filter or plan.tree or plan.compiled_filter or plan.skip_before ~= nil
    or self._ttl_attr ~= nil or self._ttl_fn ~= nil
  plan.op = scanning and "Scan" or "Query"
  plan.fn = fn
  plan.now = (self._ttl_attr or self._ttl_fn) and now(self) or nil
  plan.items, plan.pos, plan.n, plan.returned = nil, 0, 0, 0
  plan.done = plan.done or false
  return plan
end

-- Read the next page of a plan into plan.items.
local function fill(p)
  if p.done then return false end
  local req = p.req
  if p.limit and not p.here then
    req.Limit = p.limit - p.returned
  elseif p.limit then
    req.Limit = math_min(1000, (p.limit - p.returned) * 2 + 10)
  end
  local self = p.db
  local r, msg, code = call(self, p.op, req)
  if not r then
    p.done = true
    return nil, prefix(p.fn, msg), code
  end
  local items = r.Items or {}
  local out = {}
  for i = 1, #items do out[i] = take_item(items[i]) end
  p.items, p.pos, p.n = out, 0, #out
  if p.ttl_lookup and #out > 0 then
    -- false for an item expired, or gone since the index entry was read
    local keys = {}
    for i = 1, #out do keys[i] = key_of(self, out[i]) end
    local full, bmsg, bcode = self:batch_get_item(keys)
    if not full then
      p.done = true
      return nil, bmsg:gsub("^dynafile%.batch_get_item: ", "dynafile." .. p.fn .. ": "), bcode
    end
    p.alive = full
  end
  local lek = r.LastEvaluatedKey
  if lek then
    req.ExclusiveStartKey = lek
    p.next_key = decode_item(lek)
  else
    p.done = true
    p.next_key = nil
  end
  local stats = p.stats
  if stats then
    stats.examined = stats.examined + (r.ScannedCount or 0)
    stats.decoded = stats.decoded + #out
    stats.pages = stats.pages + 1
  end
  return true
end

-- The next item of a plan: item, or nil at the end, or nil, msg, code.
local function read_next(p)
  local self = p.db
  while true do
    if p.limit and p.returned >= p.limit then return nil end
    if p.pos < p.n then
      p.pos = p.pos + 1
      local it = p.items[p.pos]
      local keep = true
      if p.skip_before ~= nil then
        local v = it[p.skip_attr]
        if p.reverse then
          keep = not key_less(p.skip_before, v)
        else
          keep = not key_less(v, p.skip_before)
        end
      end
      if keep and p.now then
        if p.ttl_lookup then
          keep = p.alive[p.pos] and true or false
        elseif expired(self, it, p.now) then
          keep = false
        end
      end
      if keep and p.tree and not expr.eval(p.tree, it) then keep = false end
      if keep and p.compiled_filter and not p.compiled_filter:eval(it) then keep = false end
      if keep and p.lua_filter and not p.lua_filter(it) then keep = false end
      if keep then
        p.returned = p.returned + 1
        p.last = it
        if p.projection then return projection.apply(p.projection, it) end
        return it
      end
    else
      local ok, msg, code = fill(p)
      if not ok then return nil, msg, code end
    end
  end
end

local CLOSER = setmetatable({}, { __close = function() end })

local function iterate(self, fn, pk, opts, scanning)
  check_open(self, fn)
  local p, msg = build_read(self, fn, pk, opts, scanning)
  if not p then raise(msg) end
  return function()
    local it, m = read_next(p)
    if it == nil and m ~= nil then error(m, 2) end
    return it
  end, nil, nil, CLOSER
end

--- Iterate over a partition (as a local `db:query`).  `limit` counts items
-- returned, as locally (DynamoDB's Limit, which counts items evaluated,
-- is chosen per request).
-- @param pk the partition-key value (of the table, or of `opts.index`), or
--   a `dynafile.expr` key condition
-- @tparam[opt] table opts the local query's options: a key condition
--   (`eq`, `lt`, `le`, `gt`, `ge`, `between`, `begins_with`,
--   `key_condition`), `starts_with`, `scan_index_forward`, `index`,
--   `filter`, `limit`, `start_after`, `projection`, `stats`
-- @return a generic-for iterator yielding items (plus a closing value)
-- @raise on invalid options, an unknown index, a filter or projection
--   that does not compile, a regular expression (NotSupported), a closed
--   handle; the iterator raises when a page cannot be read
function DB:query(pk, opts)
  return iterate(self, "query", pk, opts, false)
end

--- Iterate over the table or an index (as a local `db:scan`).
-- @tparam[opt] table opts `filter`, `limit`, `start_after`, `index`,
--   `segment` and `segments` (a parallel scan, segment k of n),
--   `projection`, `stats`
-- @return a generic-for iterator yielding items (plus a closing value)
-- @raise as query
function DB:scan(opts)
  return iterate(self, "scan", nil, opts, true)
end

local PAGE = 100

local function page(self, fn, pk, opts, scanning)
  check_open(self, fn)
  local p, msg, code = build_read(self, fn, pk, opts, scanning)
  if not p then return nil, msg, code end
  p.limit = p.limit or PAGE
  local items = {}
  while true do
    local it, m, c = read_next(p)
    if it == nil then
      if m ~= nil then return nil, m, c end
      break
    end
    items[#items + 1] = it
  end
  if p.pos < p.n then return items, key_of(self, p.last, p.index) end
  if p.done then return items, nil end
  return items, p.next_key
end

--- One page of a query: up to `opts.limit` (default 100) items, and the
-- key to resume after.
-- @param pk as for query
-- @tparam[opt] table opts as for query
-- @treturn table|nil the items (a list)
-- @treturn table|string `next_key`: nil when nothing remains, else the key
--   to pass as `start_after`; or the message on failure
-- @treturn string code on failure: "ValidationError" (a filter or
--   projection that does not compile), "NotSupported", or a request's code
-- @raise on invalid options (other than filters and projections), a closed
--   handle
function DB:query_page(pk, opts)
  return page(self, "query_page", pk, opts, false)
end

--- One page of a scan.
-- @tparam[opt] table opts as for scan
-- @treturn table|nil the items (a list)
-- @treturn table|string `next_key`, or the message on failure
-- @treturn string code on failure, as for query_page
-- @raise as query_page
function DB:scan_page(opts)
  return page(self, "scan_page", nil, opts, true)
end

-- ------------------------------------------------------------- writes

local PUT_OPTS = { condition = true, return_old = true }

-- Read, decide, write conditionally on the image read; again when the
-- item changed meanwhile.  `decide(old_visible, raw)` returns the request
-- to send (op, req, verify) or nil, msg, code to stop.
local function optimistic(self, fn, key, decide, deadline)
  deadline = deadline or deadline_of(self)
  for _ = 1, self._retries do
    local raw, msg, code = read_raw(self, fn, key, deadline)
    if raw == nil then return nil, msg, code end
    local visible = raw
    if raw and expired(self, raw) then visible = nil end
    if not raw then visible = nil end
    local op, req, verify = guarded(self, decide, visible, raw or false)
    if not op then return nil, req, verify end
    if op == "none" then return {}, visible end -- nothing to write
    -- a dynafile.expr condition rides with the image check: when the write
    -- fails, an item still as read means that condition was false
    local user_raw = req.user_condition
    req.user_condition = nil
    local r, m, c = send_write(self, fn, op, req, true, verify, deadline)
    if r then return r, visible end
    if c ~= "ConditionalCheckFailed" then return nil, m, c end
    if user_raw ~= nil then
      local now_raw, rmsg, rcode = read_raw(self, fn, key, deadline)
      if now_raw == nil then return nil, rmsg, rcode end
      if now_raw == user_raw or (now_raw and user_raw and deep_equal(now_raw, user_raw)) then
        return cond_failed(fn)
      end
    end
  end
  return nil, string_format("dynafile.%s: the item kept changing under the optimistic check "
    .. "(%d attempts)", fn, self._retries), "ConditionalCheckFailed"
end

local function put_events(self, old, new)
  if has_listeners(self) then
    dispatch(self, { { action = "PUT", old = old or nil, new = new } })
  end
end

--- Write an item (see the local `db:put_item`).  An unconditional put is
-- one PutItem; a condition DynamoDB can evaluate goes with it as a
-- ConditionExpression; a condition function (or a regular expression, or
-- a TTL) is evaluated here on the item as read, and the write made
-- conditional on the item being exactly as read.
-- @tparam table item the item, holding the key attributes
-- @tparam[opt] table opts `condition` (a function, an expression string or
--   a `dynafile.expr`), `return_old`
-- @treturn true|nil true on success
-- @treturn table|string the previous item with `return_old` (nil when
--   there was none); or the message on failure
-- @treturn string code on failure: "ConditionalCheckFailed",
--   "ValidationError", "UnknownOutcome" (the answer was lost and the write
--   cannot be known applied), or a request's code
-- @raise on an invalid item or option, a write from inside a transaction
--   or a condition, a read-only or closed handle
function DB:put_item(item, opts)
  local fn = "put_item"
  check_open(self, fn)
  check_writable(self, fn)
  opts = check_opts(fn, opts, PUT_OPTS)
  if type(item) ~= "table" then fail(fn, "item must be a table, got %s", type(item)) end
  check_item(self, item, fn)
  local av = encode_item(item, fn)
  local cond, msg
  if opts.condition ~= nil then
    cond, msg = compile_condition(fn, opts.condition)
    if not cond then return nil, msg, "ValidationError" end
  end
  local want_old = opts.return_old or has_listeners(self)
  local ttl = self._ttl_attr or self._ttl_fn
  if cond and (cond.fn or not cond.server or ttl) then
    -- the condition runs here on the item as read (an expired item counts
    -- as absent, as locally)
    local r, old, code = optimistic(self, fn, item, function(visible, raw)
      if not holds_here(cond, visible) then return cond_failed(fn) end
      local b = expr.names()
      local req = b:into { TableName = self._table, Item = av,
        ConditionExpression = with_user(b, image_condition(self, b, raw), cond, fn) }
      req.user_condition = cond.ddb and raw or nil
      return "PutItem", req, function(cur) return cur and deep_equal(cur, item) end
    end)
    if not r then return nil, old, code end
    put_events(self, old, item)
    if opts.return_old then return true, old end
    return true
  end
  local req = { TableName = self._table, Item = av }
  if want_old then req.ReturnValues = "ALL_OLD" end
  if cond then
    local b = expr.names()
    req.ConditionExpression = cond.ddb and b:embed(cond.ddb, fn)
      or expr.translate(cond.tree, b, fn)
    b:into(req)
  end
  local r, m, code = send_write(self, fn, "PutItem", req, true,
    function(cur) return cur and deep_equal(cur, item) end)
  if not r then
    if code == "ConditionalCheckFailed" then return cond_failed(fn) end
    return nil, m, code
  end
  if r.verified and opts.return_old then
    return nil, "dynafile.put_item: the write was applied, but its first response (with the "
      .. "old item) was lost", "UnknownOutcome"
  end
  local old = r.Attributes and take_item(r.Attributes) or nil
  if old and ttl and expired(self, old) then old = nil end
  put_events(self, old, item)
  if opts.return_old then return true, old end
  return true
end

--- Delete the item with `key` (see the local `db:delete_item`).
-- @tparam table key the key attributes
-- @tparam[opt] table opts `condition`, `return_old`, as for put_item
-- @treturn true|nil true on success (also when the item was missing)
-- @treturn table|string the deleted item with `return_old`; or the
--   message on failure
-- @treturn string code on failure, as for put_item
-- @raise as put_item
function DB:delete_item(key, opts)
  local fn = "delete_item"
  check_open(self, fn)
  check_writable(self, fn)
  opts = check_opts(fn, opts, PUT_OPTS)
  check_key(self, key, fn)
  local cond, msg
  if opts.condition ~= nil then
    cond, msg = compile_condition(fn, opts.condition)
    if not cond then return nil, msg, "ValidationError" end
  end
  local ttl = self._ttl_attr or self._ttl_fn
  local old
  if cond and (cond.fn or not cond.server or ttl) then
    local r, o, code = optimistic(self, fn, key, function(visible, raw)
      if not holds_here(cond, visible) then return cond_failed(fn) end
      if not raw and not cond.ddb then return "none" end
      local b = expr.names()
      local req = b:into { TableName = self._table, Key = encode_key(self, key, fn),
        ConditionExpression = with_user(b, image_condition(self, b, raw), cond, fn) }
      req.user_condition = cond.ddb and raw or nil
      return "DeleteItem", req, function(cur) return cur == false end
    end)
    if r == nil and code then return nil, o, code end
    old = o
  else
    local req = { TableName = self._table, Key = encode_key(self, key, fn),
      ReturnValues = "ALL_OLD" }
    if cond then
      local b = expr.names()
      req.ConditionExpression = cond.ddb and b:embed(cond.ddb, fn)
      or expr.translate(cond.tree, b, fn)
      b:into(req)
    end
    local r, m, code = send_write(self, fn, "DeleteItem", req, true,
      function(cur) return cur == false end)
    if not r then
      if code == "ConditionalCheckFailed" then return cond_failed(fn) end
      return nil, m, code
    end
    if r.verified and opts.return_old then
      return nil, "dynafile.delete_item: the delete was applied, but its first response (with "
        .. "the old item) was lost", "UnknownOutcome"
    end
    old = r.Attributes and take_item(r.Attributes) or nil
    if old and ttl and expired(self, old) then
      if has_listeners(self) then
        dispatch(self, { { action = "DELETE", old = old, expired = true } })
      end
      old = nil
    end
  end
  if old and has_listeners(self) then dispatch(self, { { action = "DELETE", old = old } }) end
  if opts.return_old then return true, old end
  return true
end

-- The DynamoDB UpdateExpression of a compiled plan of changes; nil when
-- the plan needs the item read here (list add/delete).
local function plan_expression(_, plan, b, fn, changes)
  -- a dynafile.expr UpdateExpression goes as it is (it may hold ADD or
  -- arithmetic: not idempotent)
  if ddb_expr.is(changes) then return b:embed(changes, fn), true end
  if plan.set == nil then return nil end
  local sets, removes = {}, {}
  local function path(segs)
    local p = {}
    for i, s in ipairs(segs) do p[i] = type(s) == "number" and s - 1 or s end
    return b:path(p)
  end
  for _, op in ipairs(plan.set) do
    sets[#sets + 1] = path(op.segs) .. " = " .. b:value(op.value, fn, op.path)
  end
  for _, op in ipairs(plan.add) do
    if type(op.value) ~= "number" then return nil end
    local p = path(op.segs)
    sets[#sets + 1] = p .. " = if_not_exists(" .. p .. ", " .. b:value(0, fn) .. ") + "
      .. b:value(op.value, fn, op.path)
  end
  if #plan.delete > 0 then return nil end
  for _, op in ipairs(plan.remove) do removes[#removes + 1] = path(op.segs) end
  local parts = {}
  if #sets > 0 then parts[#parts + 1] = "SET " .. table_concat(sets, ", ") end
  if #removes > 0 then parts[#parts + 1] = "REMOVE " .. table_concat(removes, ", ") end
  return table_concat(parts, " "), #plan.add > 0
end

-- The UpdateItem request that turns `raw` (false: absent) into `new`,
-- conditional on the item being `raw`.
local function image_update(self, fn, key, raw, new, cond)
  local b = expr.names()
  local sets, removes = {}, {}
  local is_key = self._is_key
  for k, v in pairs(new) do
    if not is_key[k] and not (raw and deep_equal(raw[k], v)) then
      sets[#sets + 1] = b:name(k) .. " = " .. b:value(v, fn, k)
    end
  end
  if raw then
    for k in pairs(raw) do
      if new[k] == nil and not is_key[k] then removes[#removes + 1] = b:name(k) end
    end
  end
  local req = { TableName = self._table, Key = encode_key(self, key, fn),
    ConditionExpression = with_user(b, image_condition(self, b, raw), cond, fn),
    ReturnValues = "ALL_NEW" }
  local parts = {}
  if #sets > 0 then parts[#parts + 1] = "SET " .. table_concat(sets, ", ") end
  if #removes > 0 then parts[#parts + 1] = "REMOVE " .. table_concat(removes, ", ") end
  if #parts > 0 then req.UpdateExpression = table_concat(parts, " ") end
  return b:into(req)
end

local UPDATE_OPTS = { condition = true, return_old = true }

--- Update (or create) the item with `key` (see the local
-- `db:update_item`).  A table of changes goes to DynamoDB as an
-- UpdateExpression; an update function, list `add`/`delete`, a
-- condition function, `return_old` and listeners take the optimistic
-- path (read, apply here, write conditionally on the image read).
-- @tparam table key the key attributes
-- @param changes a table of changes (`set`, `remove`, `add`, `delete`), a
--   function `(old_or_nil) -> new item`, or a `dynafile.expr`
--   UpdateExpression
-- @tparam[opt] table opts `condition`, `return_old`
-- @treturn table|nil the new item
-- @treturn table|string the old item with `return_old`; or the message on
--   failure
-- @treturn string code on failure, as for put_item
-- @raise on an invalid key, changes or option, a change of a key
--   attribute, a write from inside a transaction, a read-only or closed
--   handle
function DB:update_item(key, changes, opts)
  local fn = "update_item"
  check_open(self, fn)
  check_writable(self, fn)
  opts = check_opts(fn, opts, UPDATE_OPTS)
  check_key(self, key, fn)
  local plan, pmsg = update.compile(self, fn, changes)
  if not plan then return nil, pmsg, "ValidationError" end
  local cond, msg
  if opts.condition ~= nil then
    cond, msg = compile_condition(fn, opts.condition)
    if not cond then return nil, msg, "ValidationError" end
  end
  local ttl = self._ttl_attr or self._ttl_fn
  local deadline = deadline_of(self)
  local direct = type(plan) == "table" and not opts.return_old and not has_listeners(self)
    and not ttl and not (cond and (cond.fn or not cond.server))
  if direct then
    local b = expr.names()
    local ue, adds = plan_expression(self, plan, b, fn, changes)
    if ue then
      local req = { TableName = self._table, Key = encode_key(self, key, fn),
        ReturnValues = "ALL_NEW" }
      if ue ~= "" then req.UpdateExpression = ue end
      if cond then
        req.ConditionExpression = cond.ddb and b:embed(cond.ddb, fn)
          or expr.translate(cond.tree, b, fn)
      end
      b:into(req)
      local r, m, code = send_write(self, fn, "UpdateItem", req, not adds and not cond, nil,
        deadline)
      if r then return decode_item(r.Attributes or encode_key(self, key, fn)) end
      if code == "ConditionalCheckFailed" then return cond_failed(fn) end
      -- DynamoDB does not create the maps on a path, dynafile does: a
      -- path through a missing map takes the optimistic path below
      if not (code == "ValidationError" and m:find("document path", 1, true)) then
        return nil, m, code
      end
    end
  end
  local new_item
  local r, old, code = optimistic(self, fn, key, function(visible, raw)
    if cond and not holds_here(cond, visible) then return cond_failed(fn) end
    local base = visible and update.copy(visible) or nil
    local new, umsg = update.apply(self, fn, key, base, plan)
    if not new then return nil, umsg, "ValidationError" end
    new_item = new
    local req = image_update(self, fn, key, raw, new, cond)
    req.user_condition = cond and cond.ddb and raw or nil
    return "UpdateItem", req, function(cur)
      return cur and deep_equal(cur, new)
    end
  end, deadline)
  if not r then return nil, old, code end
  local new = r.Attributes and take_item(r.Attributes) or (r.current or new_item)
  if has_listeners(self) then dispatch(self, { { action = "PUT", old = old, new = new } }) end
  if opts.return_old then return new, old end
  return new
end

-- ------------------------------------------------------------- TTL

--- Delete the expired items now, each with a DELETE event marked
-- `expired = true` (a scan, then a delete conditional on the item still
-- being expired).
-- @tparam[opt] integer limit delete at most this many
-- @treturn integer|nil the number deleted
-- @treturn string message on failure
-- @treturn string code on failure
-- @raise on an invalid limit, a read-only or closed handle
function DB:purge_expired(limit)
  local fn = "purge_expired"
  check_open(self, fn)
  check_writable(self, fn)
  if limit ~= nil then positive_int(fn, "limit", limit) end
  if not self._ttl_attr and not self._ttl_fn then return 0 end
  local t = now(self)
  local n = 0
  local b = expr.names()
  local req = { TableName = self._table, ConsistentRead = self._consistent or nil }
  if self._ttl_attr then
    local p = b:name(self._ttl_attr)
    req.FilterExpression = p .. " < " .. b:value(t, fn) .. " AND " .. p .. " >= "
      .. b:value(t - TTL_MAX_AGE, fn)
    b:into(req)
  end
  repeat
    local r, msg, code = call(self, "Scan", req)
    if not r then return nil, prefix(fn, msg), code end
    for _, av in ipairs(r.Items or {}) do
      local item = decode_item(av)
      if expired(self, item, t) then
        local db = expr.names()
        local dreq = { TableName = self._table, Key = encode_key(self, item, fn),
          ConditionExpression = image_condition(self, db, item), ReturnValues = "ALL_OLD" }
        db:into(dreq)
        local d, dmsg, dcode = send_write(self, fn, "DeleteItem", dreq, true,
          function(cur) return cur == false end)
        if d then
          n = n + 1
          if has_listeners(self) then
            dispatch(self, { { action = "DELETE", old = item, expired = true } })
          end
        elseif dcode ~= "ConditionalCheckFailed" then
          return nil, dmsg, dcode
        end
        if limit and n >= limit then return n end
      end
    end
    req.ExclusiveStartKey = r.LastEvaluatedKey
  until not r.LastEvaluatedKey
  return n
end

-- ------------------------------------------------------------- listeners

--- Register a listener for the writes this process makes to the table
-- (through any handle on it).  Writes by other processes or clients are
-- not heard.
-- @tparam function f called with each event `{action, old, new, expired}`
-- @treturn table the listener's handle, for remove_stream_listener
-- @raise when f is not a function, or on a closed handle
function DB:add_stream_listener(f)
  check_open(self, "add_stream_listener")
  if type(f) ~= "function" then fail("add_stream_listener", "listener must be a function") end
  return listeners.add(self._st, f)
end

--- Remove a listener.
-- @tparam table h the handle add_stream_listener returned
-- @treturn boolean whether it was registered
-- @raise on a closed handle
function DB:remove_stream_listener(h)
  check_open(self, "remove_stream_listener")
  return listeners.remove(self._st, h)
end

--- Not supported: the change log is a local database's.
-- @treturn nil
-- @treturn string the reason
-- @treturn string "NotSupported"
-- @raise on a closed handle
function DB:poll_stream()
  check_open(self, "poll_stream")
  return not_supported("poll_stream", "the change log belongs to local databases; listeners "
    .. "hear this process's own writes, DynamoDB Streams carry the others")
end

--- Not supported: the change log is a local database's.
-- @treturn nil
-- @treturn string the reason
-- @treturn string "NotSupported"
-- @raise on a closed handle
function DB:read_stream()
  check_open(self, "read_stream")
  return not_supported("read_stream", "the change log belongs to local databases; listeners "
    .. "hear this process's own writes, DynamoDB Streams carry the others")
end

-- ------------------------------------------------------------- the rest

--- Set, change or clear the table's TTL attribute with UpdateTimeToLive
-- (a change is a disable and an enable: DynamoDB keeps one TTL attribute,
-- and may refuse a second change within an hour).  This handle hides
-- items expired by the new attribute at once (other handles once opened
-- again); DynamoDB deletes them within days, `purge_expired` at once.  A
-- server without TTL (dynalite) gets the client's own: expired items
-- hidden and purged by `purge_expired`.  A TTL function given to
-- `dynafile.open` still judges this handle's items.
-- @tparam string|false name the attribute holding the expiry time in
--   epoch seconds, or false: items no longer expire
-- @treturn true|nil
-- @treturn string message on failure
-- @treturn string code on failure: "ReadOnly", or a request's code
-- @raise on a name that is neither a non-empty string nor false, or a
--   closed handle
function DB:set_ttl(name)
  local fn = "set_ttl"
  check_open(self, fn)
  if name ~= false and type(name) ~= "string" then
    fail(fn, "name must be an attribute name or false, got %s", type(name))
  end
  if name == "" then fail(fn, "ttl must be a non-empty attribute name") end
  if self._readonly then
    return nil, "dynafile.set_ttl: the database is opened read-only", "ReadOnly"
  end
  check_writable(self, fn)
  local s = self._schema
  local cur = s.ttl
  if (name or nil) == cur then return true end
  local c = self._client
  local function ttl_request(enabled, attr)
    local r, msg, code = c:call("UpdateTimeToLive", { TableName = self._table,
      TimeToLiveSpecification = { Enabled = enabled, AttributeName = attr } })
    if r then return true end
    -- a server without TTL: the client's own expiry (see open)
    if code == "NotSupported" then return false end
    return nil, prefix(fn, msg), code
  end
  local server = s.server_ttl
  if cur and server then
    local ok, msg, code = ttl_request(false, cur)
    if ok == nil then return nil, msg, code end
    server = false
  end
  if name then
    local ok, msg, code = ttl_request(true, name)
    if ok == nil then
      if cur then
        for h in pairs(self._st.open_handles) do
          h._ttl_attr, h._schema.ttl, h._schema.server_ttl = nil, nil, false
        end
      end
      return nil, msg, code
    end
    server = ok
  end
  s.ttl, s.server_ttl = name or nil, server
  -- every handle of this process on the table follows at once
  for h in pairs(self._st.open_handles) do
    h._ttl_attr = name or nil
    h._schema.ttl, h._schema.server_ttl = name or nil, server
  end
  return true
end

--- Not supported: DynamoDB keeps its indexes itself.
-- @treturn nil
-- @treturn string the reason
-- @treturn string "NotSupported"
-- @raise on a closed handle
function DB:check()
  check_open(self, "check")
  return not_supported("check", "DynamoDB maintains its indexes; there is nothing to verify here")
end

--- Drop a global secondary index (waits until it is gone).  Local
-- secondary indexes cannot be dropped in DynamoDB.
-- @tparam string name the index
-- @treturn true|nil true once the index is gone
-- @treturn string message on failure
-- @treturn string code on failure: "NotSupported" (an LSI, or a server that
--   does not delete indexes), "ReadOnly", or a request's code
-- @raise on a name that is not a string or names no index, a closed handle
function DB:drop_index(name)
  check_open(self, "drop_index")
  if type(name) ~= "string" then
    fail("drop_index", "name must be an index name, got %s", type(name))
  end
  local d = self._schema.indexes[name]
  if not d then fail("drop_index", "no index named %s", name) end
  if self._readonly then
    return nil, "dynafile.drop_index: the database is opened read-only", "ReadOnly"
  end
  if d.kind == "lsi" then
    return not_supported("drop_index", "DynamoDB cannot drop a local secondary index")
  end
  local s, msg, code = tables.drop_gsi(self._client, self._table, name)
  if not s then return nil, prefix("drop_index", msg), code end
  s.ttl, s.server_ttl = self._schema.ttl, self._schema.server_ttl
  self._schema = s
  return true
end

--- The schema in force: `{pk, sk, ttl, indexes = {name = {kind, pk, sk,
-- projection}}}`, as a local handle gives it, plus `types` (the key
-- attributes' DynamoDB types) and `table` (the table name).
-- @treturn table the schema
-- @raise on a closed handle
function DB:schema()
  check_open(self, "schema")
  local s = self._schema
  local idx = {}
  for name, d in pairs(s.indexes) do
    idx[name] = { name = name, kind = d.kind, pk = d.pk, sk = d.sk, projection = d.projection }
  end
  local types = {}
  for k, v in pairs(s.types) do types[k] = v end
  return { pk = s.pk, sk = s.sk, ttl = s.ttl, indexes = idx, types = types, table = self._table }
end

--- Statistics from DescribeTable (DynamoDB updates its counts about every
-- six hours): `items`, `used_bytes`, `index_entries`, `status`, and
-- `requests`/`retries`/`throttled` counted by this handle's client.
-- @treturn table|nil the statistics
-- @treturn string message on failure
-- @treturn string code on failure
-- @raise on a closed handle
function DB:stat()
  check_open(self, "stat")
  local r, msg, code = call(self, "DescribeTable", { TableName = self._table })
  if not r then return nil, prefix("stat", msg), code end
  local d = r.Table
  local entries = 0
  for _, list in ipairs { d.GlobalSecondaryIndexes or {}, d.LocalSecondaryIndexes or {} } do
    for _, x in ipairs(list) do entries = entries + (x.ItemCount or 0) end
  end
  local cs = self._client.stats
  return {
    items = math_floor(d.ItemCount or 0), used_bytes = math_floor(d.TableSizeBytes or 0),
    index_entries = math_floor(entries),
    status = d.TableStatus, table = self._table, requests = cs.requests, retries = cs.retries,
    throttled = cs.throttled,
  }
end

--- Close the handle: its idle connections are closed; further calls raise.
-- @treturn true
-- @raise never
function DB:close()
  if self._closed then return true end
  self._closed = true
  self._client:close()
  local st = self._st
  st.open_handles[self] = nil
  st.handles = st.handles - 1
  if st.handles == 0 and shared[self._sid] == st then shared[self._sid] = nil end
  return true
end

DB.__close = DB.close
DB.__gc = DB.close

function DB:__tostring()
  return string_format("dynafile.db(%s)%s", self._url, self._closed and " closed" or "")
end

-- Internals for dynafile.remote.batch.
M._internal = {
  raise = raise, fail = fail, check_open = check_open, check_writable = check_writable,
  check_key = check_key, check_item = check_item, check_opts = check_opts, key_of = key_of,
  encode_key = encode_key,
  identity = identity, call = call, prefix = prefix, read_raw = read_raw, expired = expired,
  has_listeners = has_listeners, dispatch = dispatch, compile_condition = compile_condition,
  guarded = guarded,
  image_condition = image_condition, image_update = image_update, plan_expression = plan_expression,
  backoff = backoff, not_supported = not_supported, now = now,
}

require("dynafile.remote.batch")(M)

return M
