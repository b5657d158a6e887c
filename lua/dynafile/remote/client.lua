--- dynafile.remote.client: DynamoDB's JSON API over HTTP, signed, with
-- retries.
--
-- `client:call(operation, request, mode)` sends one DynamoDB operation
-- (`"GetItem"`, ...) with a Lua table as its JSON body and returns the
-- decoded response, or `nil, message, code [, details]`.
--
-- Retries.  A request is sent again, after an exponential backoff with
-- full jitter (a random wait between 0 and base * 2^attempt, capped), when
-- DynamoDB certainly did not apply it: throttling
-- (ProvisionedThroughputExceeded, Throttling, RequestLimitExceeded), a
-- conflict with a transaction in progress, a connection that could not be
-- made, a request that could not be sent whole.  When the outcome is
-- unknown -- a 5xx answer, a connection dropped or timed out after the
-- request was sent -- it is sent again only in mode "idempotent" (reads,
-- writes whose second application changes nothing, transactions carrying
-- a ClientRequestToken); in mode "once" the call returns
-- `nil, message, "UnknownOutcome"`.
--
-- Invariant: every call returns by its deadline (`timeout` seconds after
-- it started, 10 by default), retries included: each socket operation is
-- bounded by the time left, and no backoff sleeps past it.
-- @module dynafile.remote.client

local http = require "dynafile.remote.http"
local sigv4 = require "dynafile.remote.sigv4"
local cjson = require "cjson"

local type, tostring, pcall, pairs, setmetatable = type, tostring, pcall, pairs, setmetatable
local string_format = string.format
local math_random, math_min = math.random, math.min

local M = {}

-- A private cjson instance: settings made here do not reach other users of
-- cjson in the process.
local json = cjson.new()
json.encode_sparse_array(false)
json.decode_max_depth(200)
json.encode_max_depth(200)
M.json = json

local THROTTLED = {
  ProvisionedThroughputExceededException = true,
  ThrottlingException = true,
  RequestLimitExceeded = true,
  -- a write that met a transaction in progress was not applied
  TransactionConflictException = true,
  TransactionInProgressException = true,
}

-- DynamoDB exception names and the dynafile codes they become.
local CODES = {
  ConditionalCheckFailedException = "ConditionalCheckFailed",
  TransactionCanceledException = "TransactionCanceled",
  ValidationException = "ValidationError",
  SerializationException = "ValidationError",
  ResourceNotFoundException = "ResourceNotFound",
  ResourceInUseException = "ResourceInUse",
  UnrecognizedClientException = "AccessDenied",
  InvalidSignatureException = "AccessDenied",
  AccessDeniedException = "AccessDenied",
  MissingAuthenticationTokenException = "AccessDenied",
  IncompleteSignatureException = "AccessDenied",
  UnknownOperationException = "NotSupported",
  IdempotentParameterMismatchException = "IdempotentParameterMismatch",
  ItemCollectionSizeLimitExceededException = "ItemCollectionSizeLimitExceeded",
  LimitExceededException = "LimitExceeded",
}
for k in pairs(THROTTLED) do CODES[k] = "Throttled" end

-- Empty lists (see values.EMPTY_LIST) become [] in the JSON text.
local EMPTY_LIST_JSON = '"L":"\\u0000dynafile:empty-list\\u0000"'
local function empty_lists(body)
  local out, i = {}, 1
  while true do
    local a, b = body:find(EMPTY_LIST_JSON, i, true)
    if not a then break end
    out[#out + 1] = body:sub(i, a - 1)
    out[#out + 1] = '"L":[]'
    i = b + 1
  end
  out[#out + 1] = body:sub(i)
  return table.concat(out)
end

local sign_dynamodb = sigv4.sign_dynamodb
local TARGETS = {} -- operation name -> X-Amz-Target value

local Client = {}
Client.__index = Client

--- A client.
-- @tparam table o `endpoint` (URL; default DynamoDB's for the region),
--   `region`, `credentials` (`{access_key_id, secret_access_key,
--   session_token}`), `timeout` (seconds per call, default 10),
--   `max_attempts` (default 10), `backoff` (base seconds, default 0.025),
--   `backoff_cap` (default 2), `tls` (`{verify = false}` to skip
--   certificate checks; `cafile`), `pool_size`
-- @treturn table|nil the client
-- @treturn string the reason the endpoint is not usable
-- @raise never
function M.new(o)
  local url = o.endpoint or string_format("https://dynamodb.%s.amazonaws.com", o.region)
  local ep, why = http.parse_url(url)
  if not ep then return nil, string_format("endpoint '%s' %s", tostring(url), why) end
  return setmetatable({
    ep = ep, url = url,
    pool = http.pool(ep, { tls = o.tls, pool_size = o.pool_size }),
    region = o.region, creds = o.credentials,
    timeout = o.timeout or 10, max_attempts = o.max_attempts or 10,
    backoff = o.backoff or 0.025, backoff_cap = o.backoff_cap or 2,
    stats = { requests = 0, retries = 0, throttled = 0 },
    heads = {},
  }, Client)
end

local function decode(body)
  local ok, v = pcall(json.decode, body)
  if ok and type(v) == "table" then return v end
  return nil
end

-- The dynafile code and message of an error response.
local function error_of(status, body)
  local e = decode(body) or {}
  local t = e.__type or ""
  local name = t:match("#(.+)$") or t
  if name == "" then name = status >= 500 and "InternalServerError" or "HTTP" .. status end
  local msg = e.message or e.Message or ("HTTP status " .. status)
  return name, msg, e
end

--- Send one operation.
-- @tparam string op the operation name, e.g. "PutItem"
-- @tparam table|string req the request body, or its JSON text
-- @tparam[opt] string mode "idempotent" (default) or "once"
-- @tparam[opt] number deadline the `http.now()` time by which the call
--   returns, retries included (default: now plus the client's timeout)
-- @treturn table|nil the response
-- @treturn string the message on failure
-- @treturn string the code on failure: "ConditionalCheckFailed",
--   "TransactionCanceled", "ValidationError", "ResourceNotFound",
--   "Throttled" (still throttled when the attempts or the time ran out),
--   "ServerError", "IOError" (could not reach the server), "Timeout",
--   "UnknownOutcome" (mode "once": the request may have been applied),
--   "AccessDenied", "NotSupported", ...
-- @treturn table the decoded error body (CancellationReasons, Item)
-- @raise when the request cannot be encoded as JSON
function Client:call(op, req, mode, deadline)
  local start = http.now()
  deadline = deadline or start + self.timeout
  local body = req
  if type(req) ~= "string" then
    body = json.encode(req)
    if body:find(EMPTY_LIST_JSON, 1, true) then body = empty_lists(body) end
  end
  local ep = self.ep
  local stats = self.stats
  local target = TARGETS[op]
  if not target then
    target = "DynamoDB_20120810." .. op
    TARGETS[op] = target
  end
  local last_msg, last_code, ambiguous
  for attempt = 0, self.max_attempts - 1 do
    if attempt > 0 then
      stats.retries = stats.retries + 1
      local wait = math_random() * math_min(self.backoff_cap, self.backoff * 2 ^ attempt)
      local left = deadline - http.now()
      if wait >= left then break end
      http.sleep(wait)
    end
    local creds = self.creds
    local amz_date, auth = sign_dynamodb(target, body, ep.authority, ep.path, self.region, creds)
    local token = creds.session_token
    -- the request line and the fixed headers, kept per operation
    local head = self.heads[op]
    if not head then
      head = "POST " .. ep.path .. " HTTP/1.1\r\nhost: " .. ep.authority
        .. "\r\ncontent-type: application/x-amz-json-1.0\r\nx-amz-target: " .. target
        .. "\r\nx-amz-date: "
      self.heads[op] = head
    end
    local request = head .. amz_date .. "\r\n"
      .. (token and ("x-amz-security-token: " .. token .. "\r\n") or "")
      .. "authorization: " .. auth .. "\r\ncontent-length: " .. #body .. "\r\n\r\n" .. body
    stats.requests = stats.requests + 1
    -- (the first attempt's clock is the call's start)
    local status, data, sent = self.pool:request(request, deadline, attempt == 0 and start or nil)
    if status == 200 then
      local r = decode(data)
      if r then return r end
      -- a 200 whose body is not JSON: the answer was damaged on the way
      last_msg, last_code, ambiguous = "malformed response to " .. op, "ServerError", true
    elseif status then
      local name, msg, e = error_of(status, data)
      if THROTTLED[name] then
        stats.throttled = stats.throttled + 1
        last_msg, last_code = string_format("%s: %s: %s", op, name, msg), "Throttled"
      elseif status >= 500 then
        last_msg, last_code, ambiguous = string_format("%s: %s: %s", op, name, msg), "ServerError",
          true
      elseif name == "ValidationException" then
        -- DynamoDB's own words, as a local database gives them
        return nil, msg, "ValidationError", e
      else
        return nil, string_format("%s: %s", op, msg), CODES[name] or name:gsub("Exception$", ""), e
      end
    else
      local msg = data
      last_msg = string_format("%s: %s (%s)", op, msg, self.url)
      if msg == "timeout" or msg:find("timeout", 1, true) then
        last_code = "Timeout"
      else
        last_code = "IOError"
      end
      if sent then ambiguous = true end
    end
    if ambiguous and mode == "once" then
      return nil, last_msg .. "; the request may or may not have been applied", "UnknownOutcome"
    end
    if http.now() >= deadline then break end
  end
  if ambiguous and mode == "once" then
    return nil, last_msg .. "; the request may or may not have been applied", "UnknownOutcome"
  end
  if last_code == "Timeout" or http.now() >= deadline then
    if last_code ~= "Throttled" then last_code = "Timeout" end
    last_msg = string_format("%s (gave up after %.1f s)", last_msg, http.now() - start)
  end
  return nil, last_msg, last_code
end

--- Close the idle connections.
-- @return nothing
-- @raise never
function Client:close()
  self.pool:close()
end

return M
