--- dynafile.serve.auth: AWS Signature Version 4 for `dynafile serve --auth`.
--
-- The --auth file lists access keys, one "ACCESS_KEY_ID SECRET_KEY" per
-- line (blank lines and lines starting with # are skipped).  Every
-- request must then carry an Authorization header signed with one of
-- them (AWS4-HMAC-SHA256): the canonical request is rebuilt from the
-- method, path, query, the signed headers and the body's SHA-256, the
-- signing key derived from the secret, the date, the region and the
-- service, and the signature compared in constant time.  The request's
-- date must be within 15 minutes of the server's clock.  Failures are
-- DynamoDB's errors: MissingAuthenticationTokenException,
-- IncompleteSignatureException, UnrecognizedClientException,
-- InvalidSignatureException.
--
-- HMAC-SHA256 and SHA-256 come from OpenSSL through lua-luaossl.
--
-- Invariant: `verify` returns only for a request signed with a listed key;
-- it raises otherwise, before the request is read any further.
-- @module dynafile.serve.auth

local errors = require "dynafile.serve.errors"

local ngx = ngx -- luacheck: globals ngx
local pairs, ipairs, type, tostring = pairs, ipairs, type, tostring
local string_format, string_match, string_gsub, string_lower, string_byte, string_gmatch =
  string.format, string.match, string.gsub, string.lower, string.byte, string.gmatch
local table_concat, table_sort = table.concat, table.sort
local io_open, os_time = io.open, os.time

local M = {}

local SKEW = 15 * 60

--- Read an --auth file.
-- @treturn table|nil access key id -> secret
-- @treturn string the reason on failure
function M.load(path)
  local f, err = io_open(path, "r")
  if not f then return nil, "cannot read the --auth file: " .. tostring(err) end
  local keys, n, lineno = {}, 0, 0
  for line in f:lines() do
    lineno = lineno + 1
    line = string_gsub(line, "^%s+", "")
    if line ~= "" and string_byte(line, 1) ~= 35 then
      local id, secret = string_match(line, "^(%S+)%s+(%S+)%s*$")
      if not id then
        f:close()
        return nil, string_format("%s:%d: expected \"ACCESS_KEY_ID SECRET_KEY\"", path, lineno)
      end
      keys[id] = secret
      n = n + 1
    end
  end
  f:close()
  if n == 0 then return nil, path .. ": no access keys" end
  return keys
end

local hmac_new, digest_new
local function crypto()
  if not hmac_new then
    hmac_new = require("openssl.hmac").new
    digest_new = require("openssl.digest").new
  end
end

local function hex(s)
  return (string_gsub(s, ".", function(c) return string_format("%02x", string_byte(c)) end))
end

local function sha256_hex(s)
  return hex(digest_new("sha256"):final(s))
end

local function hmac(key, data)
  return hmac_new(key, "sha256"):final(data)
end

-- Constant-time string comparison.
local function same(a, b)
  if #a ~= #b then return false end
  local diff = 0
  for i = 1, #a do
    if string_byte(a, i) ~= string_byte(b, i) then diff = diff + 1 end
  end
  return diff == 0
end

-- Epoch seconds of an ISO-8601 basic date-time (20240101T000000Z).
local function parse_amz_date(s)
  local y, mo, d, h, mi, se = string_match(s or "", "^(%d%d%d%d)(%d%d)(%d%d)T(%d%d)(%d%d)(%d%d)Z$")
  if not y then return nil end
  -- os.time takes local time: correct by the zone offset of the epoch
  local t = os_time { year = y, month = mo, day = d, hour = h, min = mi, sec = se, isdst = false }
  local utc = os_time(os.date("!*t", 0))
  return t - utc
end

local function fmt_amz(t)
  return os.date("!%Y%m%dT%H%M%SZ", t)
end

local function incomplete(msg)
  errors.raise("IncompleteSignatureException", msg)
end

local function invalid(msg)
  errors.raise("InvalidSignatureException", msg)
end

-- URI-encode a query component as SigV4 wants it.
local function encode(s)
  return (string_gsub(s, "[^%w%-%._~]", function(c) return string_format("%%%02X",
    string_byte(c)) end))
end

local function canonical_query(args)
  local list = {}
  for k, v in pairs(args) do
    if type(v) == "table" then
      for _, x in ipairs(v) do list[#list + 1] = encode(k) .. "=" .. encode(x == true and ""
        or x) end
    else
      list[#list + 1] = encode(k) .. "=" .. encode(v == true and "" or v)
    end
  end
  table_sort(list)
  return table_concat(list, "&")
end

--- Check the request being served (nginx) against the keys.
-- @tparam table keys access key id -> secret
-- @tparam string body the request body
-- @tparam string authz the Authorization header (or nil)
-- @raise a DynamoDB error when the signature is missing or wrong
function M.verify(keys, body, authz)
  if not authz or not string_match(authz, "^%s*AWS4%-") then
    errors.raise("MissingAuthenticationTokenException", "Request is missing Authentication Token")
  end
  local algorithm, rest = string_match(authz, "^%s*(%S+)%s+(.*)$")
  if not algorithm then incomplete("Authorization header requires 'Credential' parameter. "
    .. "Authorization header requires 'Signature' parameter. Authorization header requires "
    .. "'SignedHeaders' parameter. Authorization=" .. authz) end
  local params = {}
  for k, v in string_gmatch(rest, "([%w]+)=([^,%s]*)") do params[k] = v end
  local missing = {}
  for _, p in ipairs { "Credential", "Signature", "SignedHeaders" } do
    if not params[p] then
      missing[#missing + 1] = "Authorization header requires '" .. p .. "' parameter."
    end
  end
  local headers = ngx.req.get_headers(200)
  local amz_date = headers["x-amz-date"]
  if type(amz_date) == "table" then amz_date = amz_date[1] end
  if not amz_date and not headers["date"] then
    missing[#missing + 1] = "Authorization header requires existence of either a 'X-Amz-Date' "
      .. "or a 'Date' header."
  end
  if #missing > 0 then incomplete(table_concat(missing, " ") .. " Authorization=" .. authz) end
  if algorithm ~= "AWS4-HMAC-SHA256" then
    incomplete(string_format("Unsupported AWS 'algorithm': '%s' (only AWS4-HMAC-SHA256 for now). ",
      algorithm))
  end
  local t = parse_amz_date(amz_date)
  if not t then
    incomplete(string_format("Date must be in ISO-8601 'basic format'. Got '%s'. See "
      .. "http://en.wikipedia.org/wiki/ISO_8601", tostring(amz_date)))
  end
  local server = ngx.time()
  if t < server - SKEW then
    invalid(string_format("Signature expired: %s is now earlier than %s (%s - 15 min.)",
      amz_date, fmt_amz(server - SKEW), fmt_amz(server)))
  end
  if t > server + SKEW then
    invalid(string_format("Signature not yet current: %s is still later than %s (%s + 15 min.)",
      amz_date, fmt_amz(server + SKEW), fmt_amz(server)))
  end
  local id, date, region, service, term = string_match(params.Credential,
    "^([^/]+)/([^/]+)/([^/]+)/([^/]+)/([^/]+)$")
  if not id then
    incomplete(string_format("Credential must have exactly 5 slash-delimited elements, e.g. "
      .. "keyid/date/region/service/term, got '%s'", params.Credential))
  end
  local problems = {}
  if service ~= "dynamodb" then
    problems[#problems + 1] = "Credential should be scoped to correct service: 'dynamodb'."
  end
  if term ~= "aws4_request" then
    problems[#problems + 1] = string_format("Credential should be scoped with a valid terminator: "
      .. "'aws4_request', not '%s'.", term)
  end
  if date ~= amz_date:sub(1, 8) then
    problems[#problems + 1] = string_format("Date in Credential scope does not match YYYYMMDD from "
      .. "ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.", date, amz_date:sub(1, 8),
      amz_date)
  end
  if #problems > 0 then invalid(table_concat(problems, " ")) end
  local secret = keys[id]
  if not secret then
    errors.raise("UnrecognizedClientException",
      "The security token included in the request is invalid.")
  end
  local signed = {}
  for h in string_gmatch(params.SignedHeaders, "[^;]+") do signed[#signed + 1] = string_lower(h) end
  local has_host = false
  for _, h in ipairs(signed) do if h == "host" then has_host = true end end
  if not has_host then invalid("'Host' must be a 'SignedHeader' in the AWS Authorization.") end
  crypto()
  local lines = {}
  for i, h in ipairs(signed) do
    local v = headers[h]
    if type(v) == "table" then v = table_concat(v, ",") end
    v = string_gsub(string_gsub(tostring(v or ""), "^%s+", ""), "%s+$", "")
    v = string_gsub(v, "%s+", " ")
    lines[i] = h .. ":" .. v .. "\n"
  end
  local payload = headers["x-amz-content-sha256"]
  if type(payload) ~= "string" or payload == "" then payload = sha256_hex(body) end
  local path = string_match(ngx.var.request_uri or "/", "^([^?]*)") or "/"
  local creq = table_concat({
    ngx.req.get_method(), path, canonical_query(ngx.req.get_uri_args(100)),
    table_concat(lines), table_concat(signed, ";"), payload,
  }, "\n")
  local scope = table_concat({ date, region, service, term }, "/")
  local sts = table_concat({ algorithm, amz_date, scope, sha256_hex(creq) }, "\n")
  local k = hmac("AWS4" .. secret, date)
  k = hmac(k, region)
  k = hmac(k, service)
  k = hmac(k, term)
  local want = hex(hmac(k, sts))
  if not same(want, string_lower(params.Signature)) then
    invalid("The request signature we calculated does not match the signature you provided. "
      .. "Check your AWS Secret Access Key and signing method. Consult the service "
      .. "documentation for details.")
  end
end

return M
