--- dynafile.serve: the DynamoDB HTTP API, served by nginx workers.
--
-- `dynafile serve` (serve/cli.lua) writes an nginx configuration whose Lua
-- hooks call this module:
--
-- * `init(cfg)` in the nginx master (init_by_lua), once, before the
--   workers are forked: loads the modules, takes the data directory's
--   lock, finishes what a crash interrupted (catalog.recover, pending
--   transactions), reads the --auth file;
-- * `init_worker()` in each worker after the fork: opens the catalog;
-- * `handle()` for every request (content_by_lua): reads the body,
--   checks the signature (with --auth), decodes the JSON, checks it
--   against the operation's shape (api.lua) and calls the operation;
--   answers with the result or with DynamoDB's error.
--
-- Requests are dispatched on the X-Amz-Target header:
-- `DynamoDB_20120810.<Operation>` and `DynamoDBStreams_20120810.<Operation>`,
-- with bodies in `application/x-amz-json-1.0`.
--
-- Invariant: a request never raises out of `handle`; an unexpected Lua
-- error is logged with its traceback and answered as InternalServerError,
-- and the worker goes on serving.
-- @module dynafile.serve

local errors = require "dynafile.serve.errors"
local json = require "dynafile.serve.json"
local shape = require "dynafile.serve.shape"
local api = require "dynafile.serve.api"
local catalog = require "dynafile.serve.catalog"

local ngx = ngx -- luacheck: globals ngx
local pairs, ipairs, tostring, xpcall, pcall, error, type, setmetatable =
  pairs, ipairs, tostring, xpcall, pcall, error, type, setmetatable
local string_find, string_match = string.find, string.match
local debug_traceback = debug.traceback
local io_open = io.open

local M = {}

local config = {
  dir = nil,        -- data directory
  sync = "normal",  -- sync mode of the table databases
  region = "us-east-1",
  account = "000000000000",
  auth = nil,       -- access key id -> secret key, when --auth is given
  max_body = 16 * 1024 * 1024,
}
M.config = config

-- Operation name -> function(req, ctx) -> response table; filled by the
-- operation modules (tables, items, reads, batch, transact, partiql,
-- streams), each of which registers its own.
local ops = { DynamoDB = {}, Streams = {} }
M.ops = ops

local MODULES = {
  "dynafile.serve.tables", "dynafile.serve.items", "dynafile.serve.reads",
  "dynafile.serve.batch", "dynafile.serve.transact", "dynafile.serve.partiql",
  "dynafile.serve.streams",
}

local function load_operations()
  for _, name in ipairs(MODULES) do
    local ok, mod = pcall(require, name)
    if ok then
      mod.register(ops, config)
    elseif not string_find(tostring(mod), "module '" .. name .. "' not found", 1, true) then
      error(mod, 0)
    end
  end
end

--- In the nginx master, before the workers start.
-- @tparam table cfg `dir`, `sync`, `auth_file`, `region`, `lock_fd_keep`
function M.init(cfg)
  for k, v in pairs(cfg) do config[k] = v end
  load_operations()
  if cfg.auth_file then
    local auth = require "dynafile.serve.auth"
    local keys, msg = auth.load(cfg.auth_file)
    if not keys then error("dynafile serve: " .. msg, 0) end
    config.auth = keys
  end
  if cfg.check_only then return end
  local sys = require "dynafile.serve.sys"
  local ok, msg = sys.mkdir(cfg.dir .. "/@serve")
  if not ok then error("dynafile serve: " .. msg, 0) end
  -- one server per data directory: the lock is held by the master and
  -- the workers (they inherit the descriptor) until all have exited
  -- (a server that is stopping may still hold it for a moment: wait up
  -- to 5 seconds)
  local fd, lmsg
  local lock = cfg.dir .. "/@serve/lock"
  for _ = 1, 50 do
    fd, lmsg = sys.lock_file(lock)
    if fd then break end
    if sys.lock_holder(lock) == sys.getpid() then
      -- this master holds it: nginx was told to reload (SIGHUP), which
      -- would run recovery beside live workers
      error("dynafile serve: nginx cannot reload its configuration under dynafile serve "
        .. "(SIGHUP ignored: the running workers go on); restart dynafile serve instead", 0)
    end
    os.execute("sleep 0.1")
  end
  if not fd then
    local holder = sys.lock_holder(lock)
    error("dynafile serve: another dynafile serve is using " .. cfg.dir
      .. (holder and (" (its nginx master: pid " .. holder .. ")") or (" (" .. lmsg .. ")")), 0)
  end
  config.lock_fd = fd
  if cfg.parent_pid then
    -- stop (SIGTERM: fast shutdown) when `dynafile serve` exits
    sys.die_with_parent(15)
    if sys.getppid() ~= cfg.parent_pid then error("dynafile serve: the launcher exited", 0) end
  end
  local rok, rmsg = catalog.recover(cfg.dir)
  if not rok then error("dynafile serve: cannot recover the catalog: " .. tostring(rmsg), 0) end
  local t = package.loaded["dynafile.serve.transact"]
  if t and t.recover then
    local tok, tmsg = t.recover(cfg.dir)
    if not tok then error("dynafile serve: cannot recover transactions: " .. tostring(tmsg), 0) end
  end
end

--- In each worker, after the fork.
function M.init_worker()
  local shm = ngx.shared.dynafile_serve
  local ok, msg = catalog.init_worker(config, shm)
  if not ok then
    ngx.log(ngx.CRIT, "dynafile serve: cannot open the catalog: ", msg)
  end
  local t = package.loaded["dynafile.serve.transact"]
  if t and t.init_worker then t.init_worker(config, shm) end
  -- a request makes much short-lived garbage and the live heap is small:
  -- collect when it has grown fourfold, not twofold (about 5% less CPU
  -- per Query)
  collectgarbage("setpause", 400)
end

-- ------------------------------------------------------------ responses

-- Request ids: 52 characters, as DynamoDB's: 39 random ones made once
-- per worker, then a counter of 13 digits (10^12 + n: tostring prints it
-- whole, and it costs less than a string.format).
local request_prefix = nil
local request_counter = 1000000000000

local function make_request_prefix()
  local f = io_open("/dev/urandom", "rb")
  local bytes = f and f:read(39) or tostring({}) .. ngx.now()
  if f then f:close() end
  local chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
  return (bytes:gsub(".", function(c)
    local k = c:byte() % 36 + 1
    return chars:sub(k, k)
  end):sub(1, 39))
end

local function request_id()
  if not request_prefix then request_prefix = make_request_prefix() end
  request_counter = request_counter + 1
  return request_prefix .. tostring(request_counter)
end

local CONTENT_TYPE = "application/x-amz-json-1.0"

local function send(status, body, content_type)
  ngx.status = status
  local h = ngx.header
  h["Content-Type"] = content_type or CONTENT_TYPE
  h["x-amzn-RequestId"] = request_id()
  h["x-amz-crc32"] = ngx.crc32_long(body)
  h["Content-Length"] = #body
  ngx.print(body)
  return ngx.exit(status)
end

local function send_error(e, content_type)
  local body = json.encode(errors.body(e))
  return send(e.status, body, content_type)
end

-- ------------------------------------------------------------ requests

local function read_body()
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if body then return body end
  local file = ngx.req.get_body_file()
  if not file then return "" end
  local f = io_open(file, "rb")
  if not f then return "" end
  body = f:read("*a")
  f:close()
  return body or ""
end

-- The region of the request: the credential scope of its signature
-- (Credential=AKID/20240101/eu-west-1/dynamodb/aws4_request), so the
-- ARNs a client sees name the region it asked for.
local function region_of(authz)
  if not authz then return config.region end
  local r = string_match(authz, "Credential=[^/]*/[^/]*/([^/]+)/")
  return r or config.region
end

-- A request's context: `region` is worked out when first asked for (only
-- ARNs and stream records name it).
local CTX = { __index = function(ctx, k)
  if k == "region" then
    local r = region_of(ctx.authz)
    ctx.region = r
    return r
  end
  return nil
end }

local function dispatch(target, body)
  local api_name, op = string_match(target or "", "^(DynamoDB[%w]*)_20120810%.(%w+)$")
  local set
  if api_name == "DynamoDB" then
    set = "DynamoDB"
  elseif api_name == "DynamoDBStreams" then
    set = "Streams"
  end
  local fn = set and ops[set][op]
  local req, msg
  if body ~= "" then
    req, msg = json.decode(body)
    if not req then errors.serialization(msg) end
  end
  if not fn then errors.raise("UnknownOperationException") end
  local authz = ngx.var.http_authorization
  if config.auth then
    local auth = require "dynafile.serve.auth"
    auth.verify(config.auth, body, authz)
  end
  if not req then errors.serialization(nil) end
  local s = api[set][op]
  if s then shape.check(s, req) end
  local ctx = setmetatable({ account = config.account, op = op, authz = authz }, CTX)
  return fn(req, ctx)
end

local function traceback(e)
  if errors.is(e) then return e end
  local size_error = errors.item_size(e) -- an engine refusal no path mapped
  if size_error then return size_error end
  local refused = errors.from_raise(e)
  if refused then return refused end
  return debug_traceback(tostring(e), 2)
end

local function cors()
  local origin = ngx.var.http_origin
  if not origin then return false end
  local h = ngx.header
  h["Access-Control-Allow-Origin"] = "*"
  h["Access-Control-Expose-Headers"] = "x-amzn-RequestId,x-amzn-ErrorType,x-amz-crc32"
  if ngx.req.get_method() == "OPTIONS" then
    local rh = ngx.var.http_access_control_request_headers
    if rh then h["Access-Control-Allow-Headers"] = rh end
    local rm = ngx.var.http_access_control_request_method
    if rm then h["Access-Control-Allow-Methods"] = rm end
    h["Access-Control-Max-Age"] = 172800
    return true
  end
  return false
end

--- The content handler: one DynamoDB request.
function M.handle()
  if cors() then
    ngx.header["Content-Length"] = 0
    return ngx.exit(200)
  end
  local method = ngx.req.get_method()
  if method == "GET" then
    return send(200, "healthy: dynamodb." .. config.region .. ".amazonaws.com ", "text/plain")
  end
  local body = read_body()
  local ctype = ngx.var.http_content_type or ""
  ctype = string_match(ctype, "^%s*([^;%s]*)") or ""
  if method ~= "POST" or (body ~= "" and ctype ~= CONTENT_TYPE and ctype ~= "application/json") then
    return send(404, "<UnknownOperationException/>\n", "text/xml")
  end
  local out_type = ctype == "application/json" and "application/json" or CONTENT_TYPE
  local ok, res = xpcall(dispatch, traceback, ngx.var.http_x_amz_target, body)
  if ok then
    if type(res) == "string" then return send(200, res, out_type) end
    local text, msg = json.encode(res)
    if not text then
      ngx.log(ngx.ERR, "dynafile serve: cannot encode a response: ", msg)
      return send_error(errors.new("InternalServerError", "The response could not be encoded"),
        out_type)
    end
    return send(200, text, out_type)
  end
  if errors.is(res) then
    if res.status >= 500 then ngx.log(ngx.ERR, "dynafile serve: ", res.message) end
    return send_error(res, out_type)
  end
  ngx.log(ngx.ERR, "dynafile serve: ", res)
  return send_error(errors.new("InternalServerError", "Internal server error"), out_type)
end

return M
