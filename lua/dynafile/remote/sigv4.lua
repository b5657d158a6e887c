--- dynafile.remote.sigv4: AWS Signature Version 4 for requests to DynamoDB.
--
-- Signs an HTTP request (method, path, query, headers, body) with an
-- access key: the canonical request, the string to sign and the signature
-- are built as AWS's SigV4 specification defines them; SHA-256 and
-- HMAC-SHA256 come from OpenSSL: through this project's small C module
-- dynafile.remote.crypto where it was built, otherwise through the FFI
-- (LuaJIT) or luaossl.
--
-- Invariant: the headers named in SignedHeaders are exactly the ones the
-- request sends, with the values signed (the caller sends `headers` as
-- returned, and adds no header afterwards).  The derived signing key is
-- cached per (secret, date, region, service), so a request costs one HMAC
-- for the key of the day's first request only, and two SHA-256 digests
-- and one HMAC afterwards.
-- @module dynafile.remote.sigv4

local digest = require "openssl.digest"
local hmac = require "openssl.hmac"

local pairs, ipairs, tostring, select, pcall, error = pairs, ipairs, tostring, select, pcall, error
local string_format, string_byte, table_sort, table_concat =
  string.format, string.byte, table.sort, table.concat -- luacheck: ignore
local os_date, os_time = os.date, os.time

local M = {}

-- Each byte value to its two hex digits.  A 32-byte digest is turned
-- into hex by one concatenation of 32 table lookups: under callgrind on
-- Lua 5.4 that is 6,500 instructions, against 17,000 for gsub with a table
-- and 37,000 for string.format("%02x" x 32).
local HEX = {}
for i = 0, 255 do HEX[i] = string_format("%02x", i) end

local function hex32(s)
  local a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16 =
    string_byte(s, 1, 16)
  local b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12, b13, b14, b15, b16 =
    string_byte(s, 17, 32)
  local H = HEX
  return H[a1] .. H[a2] .. H[a3] .. H[a4] .. H[a5] .. H[a6] .. H[a7] .. H[a8] .. H[a9]
    .. H[a10] .. H[a11] .. H[a12] .. H[a13] .. H[a14] .. H[a15] .. H[a16] .. H[b1] .. H[b2]
    .. H[b3] .. H[b4] .. H[b5] .. H[b6] .. H[b7] .. H[b8] .. H[b9] .. H[b10] .. H[b11]
    .. H[b12] .. H[b13] .. H[b14] .. H[b15] .. H[b16]
end

--- Lower-case hexadecimal of a byte string.
-- @tparam string s bytes
-- @treturn string hex digits
-- @raise never
function M.hex(s)
  if #s == 32 then return hex32(s) end
  local out = {}
  for i = 1, #s do out[i] = HEX[string_byte(s, i)] end
  return table_concat(out)
end
local hex = M.hex

-- SHA-256 and HMAC-SHA256, from OpenSSL, through one of three providers,
-- each a table of four functions that hash the concatenation of their
-- string arguments:
--   sha256_hex(...)        the hex digest
--   hmac_key(key)          a key in the form the next two take it fastest
--   hmac(k, ...)           the raw HMAC-SHA256 under k
--   hmac_hex(k, ...)       the same in hex
-- Through luaossl, each call makes a new digest or HMAC object, and
-- OpenSSL 3 then looks the algorithm up in its providers again: about
-- 20,000 instructions of set-up per call, more than the hashing of a
-- request.  The module dynafile.remote.crypto (src/remote/crypto.c, built
-- with libcrypto 3) fetches the algorithms once, reuses one digest context
-- and keys an HMAC context once per signing key; it hashes a canonical
-- request piece by piece, never built as one string.  Without it, LuaJIT
-- calls the same libcrypto functions through the FFI, and the other Luas
-- use luaossl.
local PROVIDERS = {}

local function concat(...)
  if select("#", ...) == 1 then return (...) end
  return table_concat({ ... })
end

PROVIDERS.luaossl = function()
  return {
    sha256_hex = function(...) return hex(digest.new("sha256"):final(concat(...))) end,
    hmac_key = function(key) return key end,
    hmac = function(key, ...) return hmac.new(key, "sha256"):final(concat(...)) end,
    hmac_hex = function(key, ...) return hex(hmac.new(key, "sha256"):final(concat(...))) end,
  }
end

PROVIDERS["dynafile.remote.crypto"] = function()
  local ok, c = pcall(require, "dynafile.remote.crypto")
  if not ok then return nil, "not built (libcrypto 3's headers were missing)" end
  return c
end

-- libcrypto through LuaJIT's FFI, or nil and why not
PROVIDERS["libcrypto (FFI)"] = function()
  local ok, ffi = pcall(require, "ffi")
  if not ok then return nil, "not LuaJIT" end
  ok = pcall(ffi.cdef, [[
    typedef struct evp_md_st EVP_MD;
    typedef struct evp_md_ctx_st EVP_MD_CTX;
    typedef struct evp_mac_st EVP_MAC;
    typedef struct evp_mac_ctx_st EVP_MAC_CTX;
    typedef struct ossl_param_st {
      const char *key; unsigned int data_type; void *data; size_t data_size;
      size_t return_size;
    } OSSL_PARAM;
    EVP_MD *EVP_MD_fetch(void *libctx, const char *algorithm, const char *properties);
    EVP_MD_CTX *EVP_MD_CTX_new(void);
    void EVP_MD_CTX_free(EVP_MD_CTX *ctx);
    int EVP_DigestInit_ex(EVP_MD_CTX *ctx, const EVP_MD *type, void *impl);
    int EVP_DigestUpdate(EVP_MD_CTX *ctx, const void *d, size_t cnt);
    int EVP_DigestFinal_ex(EVP_MD_CTX *ctx, unsigned char *md, unsigned int *s);
    EVP_MAC *EVP_MAC_fetch(void *libctx, const char *algorithm, const char *properties);
    EVP_MAC_CTX *EVP_MAC_CTX_new(EVP_MAC *mac);
    void EVP_MAC_CTX_free(EVP_MAC_CTX *ctx);
    int EVP_MAC_init(EVP_MAC_CTX *ctx, const unsigned char *key, size_t keylen,
      const OSSL_PARAM params[]);
    int EVP_MAC_update(EVP_MAC_CTX *ctx, const unsigned char *data, size_t datalen);
    int EVP_MAC_final(EVP_MAC_CTX *ctx, unsigned char *out, size_t *outl, size_t outsize);
    OSSL_PARAM OSSL_PARAM_construct_utf8_string(const char *key, char *buf, size_t bsize);
    OSSL_PARAM OSSL_PARAM_construct_end(void);
  ]])
  if not ok then return nil, "the declarations clash with others" end
  local lib
  for _, name in ipairs { "libcrypto.so.3", "crypto" } do
    ok, lib = pcall(ffi.load, name)
    if ok then break end
    lib = nil
  end
  if not lib then return nil, "no libcrypto 3" end
  ok = pcall(function() return lib.EVP_MD_fetch, lib.EVP_MAC_init end)
  if not ok then return nil, "libcrypto before 3.0" end
  local md = lib.EVP_MD_fetch(nil, "SHA256", nil)
  local mac = lib.EVP_MAC_fetch(nil, "HMAC", nil)
  local mdctx = md ~= nil and lib.EVP_MD_CTX_new()
  if md == nil or mac == nil or mdctx == nil then return nil, "no SHA256 or HMAC in libcrypto" end
  ffi.gc(mdctx, lib.EVP_MD_CTX_free)
  local out = ffi.new("unsigned char[64]")
  local outl = ffi.new("size_t[1]")
  -- the parameters point into these buffers, which hmac_key keeps alive
  local param_name, digest_name = ffi.new("char[7]", "digest"), ffi.new("char[7]", "SHA256")
  local params = ffi.new("OSSL_PARAM[2]")
  params[0] = lib.OSSL_PARAM_construct_utf8_string(param_name, digest_name, 0)
  params[1] = lib.OSSL_PARAM_construct_end()
  local anchors = { param_name, digest_name }
  local ffi_string = ffi.string

  local function raw_sha256(...)
    local okd = lib.EVP_DigestInit_ex(mdctx, md, nil) == 1
    for i = 1, select("#", ...) do
      local s = select(i, ...)
      okd = okd and lib.EVP_DigestUpdate(mdctx, s, #s) == 1
    end
    if not okd or lib.EVP_DigestFinal_ex(mdctx, out, nil) ~= 1 then
      error("dynafile: OpenSSL's SHA-256 failed", 0)
    end
    return ffi_string(out, 32)
  end
  local function hmac_key(key)
    local _ = anchors
    local ctx = lib.EVP_MAC_CTX_new(mac)
    if ctx == nil then error("dynafile: out of memory", 0) end
    ffi.gc(ctx, lib.EVP_MAC_CTX_free)
    if lib.EVP_MAC_init(ctx, key, #key, params) ~= 1 then
      error("dynafile: OpenSSL's HMAC failed", 0)
    end
    return ctx
  end
  local function raw_hmac(ctx, ...)
    -- a NULL key keeps the key and starts a new message
    local okm = lib.EVP_MAC_init(ctx, nil, 0, nil) == 1
    for i = 1, select("#", ...) do
      local s = select(i, ...)
      okm = okm and lib.EVP_MAC_update(ctx, s, #s) == 1
    end
    if not okm or lib.EVP_MAC_final(ctx, out, outl, 64) ~= 1 then
      error("dynafile: OpenSSL's HMAC failed", 0)
    end
    return ffi_string(out, outl[0])
  end
  return {
    sha256_hex = function(...) return hex(raw_sha256(...)) end,
    hmac_key = hmac_key, hmac = raw_hmac,
    hmac_hex = function(ctx, ...) return hex(raw_hmac(ctx, ...)) end,
  }
end

-- Whether a provider answers as OpenSSL's one-shot functions through
-- luaossl do, for one piece and for several.
local function agrees(p)
  local ok, same = pcall(function()
    local k = p.hmac_key("key")
    return p.sha256_hex("abc") == hex(digest.new("sha256"):final("abc"))
      and p.sha256_hex("a", "", "bc") == p.sha256_hex("abc")
      and p.hmac(k, "m") == hmac.new("key", "sha256"):final("m")
      and p.hmac_hex(k, "m", "n") == hex(hmac.new("key", "sha256"):final("mn"))
      and p.hmac(k, "m") == hmac.new("key", "sha256"):final("m")
  end)
  return ok and same
end

local crypto -- the provider in use

-- The one cached signing key (most programs sign with one key, one
-- region and one service, so the cache holds the last one derived),
-- emptied when the provider changes.
local cached = {}

--- Use a provider of SHA-256 and HMAC-SHA256 (tests and benchmarks
-- compare them; the fastest available is chosen at load).
-- @tparam string name "dynafile.remote.crypto", "libcrypto (FFI)" or
--   "luaossl"
-- @treturn boolean|nil true once in use
-- @treturn string why the provider cannot be used
-- @raise never
function M.use(name)
  local make = PROVIDERS[name]
  if not make then return nil, "no provider " .. tostring(name) end
  local p, why = make()
  if not p then return nil, why end
  if not agrees(p) then return nil, "its answers differ from luaossl's" end
  crypto, M.crypto, cached = p, name, {}
  return true
end

--- Where SHA-256 and HMAC come from: "dynafile.remote.crypto",
-- "libcrypto (FFI)" (under LuaJIT, when that module is not built) or
-- "luaossl".
M.crypto = nil
local luajit = jit ~= nil -- luacheck: ignore 113 (LuaJIT's global)
if not M.use("dynafile.remote.crypto") and not (luajit and M.use("libcrypto (FFI)")) then
  assert(M.use("luaossl"))
end

--- SHA-256 of the concatenation of the arguments, in hex.
-- @tparam string ... bytes
-- @treturn string 64 hex digits
-- @raise when OpenSSL fails
function M.sha256_hex(...)
  return crypto.sha256_hex(...)
end

-- The fixed parts of sign_dynamodb's authorization value, for the last
-- day, region and access key signed with.
local auth_parts = {}
-- The canonical request's start for the last host and path, and its end
-- per X-Amz-Target value.
local creq_parts = {}
local creq_tails = {}

--- The SigV4 signing key for a day, region and service (the last one is
-- kept: the next request of the day reuses it).
-- @tparam string secret the secret access key
-- @tparam string date the day, YYYYMMDD
-- @tparam string region the region
-- @tparam string service the service ("dynamodb")
-- @treturn string the 32-byte key
-- @raise when OpenSSL fails
function M.signing_key(secret, date, region, service)
  local c = cached
  if c.secret == secret and c.date == date and c.region == region and c.service == service then
    return c.key
  end
  local p = crypto
  local k = p.hmac(p.hmac_key("AWS4" .. secret), date)
  k = p.hmac(p.hmac_key(k), region)
  k = p.hmac(p.hmac_key(k), service)
  k = p.hmac(p.hmac_key(k), "aws4_request")
  c.secret, c.date, c.region, c.service, c.key = secret, date, region, service, k
  c.keyed = p.hmac_key(k)
  return k
end

-- The signing key in the provider's form.
local function keyed(secret, date, region, service)
  local c = cached
  if c.secret == secret and c.date == date and c.region == region and c.service == service then
    return c.keyed
  end
  M.signing_key(secret, date, region, service)
  return cached.keyed
end

local function trim(v)
  -- header values: leading and trailing spaces removed, inner runs of
  -- spaces made one (most values have none: checked first)
  v = tostring(v)
  if not v:find("^%s") and not v:find("%s$") and not v:find("%s%s") then return v end
  return (v:gsub("^%s+", ""):gsub("%s+$", ""):gsub("%s+", " "))
end

-- The x-amz-date of the current second and its day, made once per second.
local date_second, date_text, date_day = nil, nil, nil
local function amz_date_of(t)
  if t ~= date_second then
    date_second, date_text = t, os_date("!%Y%m%dT%H%M%SZ", t)
    date_day = date_text:sub(1, 8)
  end
  return date_text, date_day
end

--- Sign a request.
-- @tparam table r `{method = "POST", path = "/", query = "a=1&b=2"` (already
--   URI-encoded and sorted, or nil)`, headers = {name = value}` (must hold
--   `host`)`, body = string, time = epoch seconds (default now),
--   region = ..., service = "dynamodb"}`
-- @tparam table creds `{access_key_id = ..., secret_access_key = ...,
--   session_token = ... or nil}`
-- @treturn table the headers to send: those given plus `x-amz-date`,
--   `x-amz-security-token` (with a session token), `x-amz-content-sha256`
--   when asked for, and `authorization`
-- @treturn string the canonical request (for tests and debugging)
-- @raise when OpenSSL fails
function M.sign(r, creds)
  local t = r.time or os.time()
  local amz_date, date = amz_date_of(t)
  local headers = {}
  for k, v in pairs(r.headers) do headers[k:lower()] = v end
  headers["x-amz-date"] = amz_date
  if creds.session_token then headers["x-amz-security-token"] = creds.session_token end
  local names = {}
  for k in pairs(headers) do names[#names + 1] = k end
  table_sort(names)
  local canon = {}
  for i, k in ipairs(names) do canon[i] = k .. ":" .. trim(headers[k]) .. "\n" end
  local signed = table_concat(names, ";")
  local body = r.body or ""
  local payload_hash = headers["x-amz-content-sha256"] or crypto.sha256_hex(body)
  local creq = table_concat({
    r.method, r.path or "/", r.query or "", table_concat(canon), signed, payload_hash,
  }, "\n")
  local scope = string_format("%s/%s/%s/aws4_request", date, r.region, r.service)
  local key = keyed(creds.secret_access_key, date, r.region, r.service)
  local sig = crypto.hmac_hex(key, "AWS4-HMAC-SHA256\n", amz_date, "\n", scope, "\n",
    crypto.sha256_hex(creq))
  headers.authorization = string_format(
    "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
    creds.access_key_id, scope, signed, sig)
  return headers, creq
end

--- Sign a DynamoDB request: POST to `path` with exactly the headers
-- content-type (application/x-amz-json-1.0), host, x-amz-date,
-- x-amz-target and, with a session token, x-amz-security-token.  The same
-- signature as `sign` gives for those headers (a spec compares them),
-- built without sorting or trimming: this is the client's hot path.
-- @tparam string target the X-Amz-Target value
-- @tparam string body the JSON body
-- @tparam string host the Host value
-- @tparam string path the request path ("/")
-- @tparam string region
-- @tparam table creds as for `sign`
-- @tparam[opt] integer t epoch seconds (default now)
-- @treturn string the x-amz-date value
-- @treturn string the authorization value
-- @raise when OpenSSL fails
function M.sign_dynamodb(target, body, host, path, region, creds, t)
  local amz_date, date = amz_date_of(t or os_time())
  local token = creds.session_token
  local p = crypto
  -- the canonical request, hashed piece by piece: its start per host and
  -- path, its end per target (without a session token), kept
  local creq_hash
  if token then
    creq_hash = p.sha256_hex("POST\n", path, "\n\ncontent-type:application/x-amz-json-1.0\nhost:",
      host, "\nx-amz-date:", amz_date, "\nx-amz-security-token:", token, "\nx-amz-target:",
      target, "\n\ncontent-type;host;x-amz-date;x-amz-security-token;x-amz-target\n",
      p.sha256_hex(body))
  else
    local h = creq_parts
    if h.host ~= host or h.path ~= path then
      h.host, h.path = host, path
      h.head = "POST\n" .. path .. "\n\ncontent-type:application/x-amz-json-1.0\nhost:" .. host
        .. "\nx-amz-date:"
    end
    local tail = creq_tails[target]
    if not tail then
      tail = "\nx-amz-target:" .. target .. "\n\ncontent-type;host;x-amz-date;x-amz-target\n"
      creq_tails[target] = tail
    end
    creq_hash = p.sha256_hex(h.head, amz_date, tail, p.sha256_hex(body))
  end
  -- the credential scope and the authorization's fixed part, per day
  local a = auth_parts
  if a.date ~= date or a.region ~= region or a.key_id ~= creds.access_key_id
      or a.token ~= (token ~= nil) then
    a.date, a.region, a.key_id, a.token = date, region, creds.access_key_id, token ~= nil
    a.scope = date .. "/" .. region .. "/dynamodb/aws4_request"
    a.scope_lines = "\n" .. a.scope .. "\n"
    a.head = "AWS4-HMAC-SHA256 Credential=" .. creds.access_key_id .. "/" .. a.scope
      .. (token and ", SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;"
        .. "x-amz-target, Signature=" or ", SignedHeaders=content-type;host;x-amz-date;"
        .. "x-amz-target, Signature=")
  end
  local key = keyed(creds.secret_access_key, date, region, "dynamodb")
  return amz_date, a.head .. p.hmac_hex(key, "AWS4-HMAC-SHA256\n", amz_date, a.scope_lines,
    creq_hash)
end

--- The canonical query string: parameters URI-encoded and sorted.  Not
-- used by DynamoDB's POST / requests, but part of SigV4, for callers that
-- have a query string.
-- @tparam table params `{name = value}`
-- @treturn string
-- @raise never
function M.canonical_query(params)
  local function enc(s)
    return (tostring(s):gsub("[^%w%-%._~]", function(ch)
      return string_format("%%%02X", string_byte(ch))
    end))
  end
  local parts = {}
  for k, v in pairs(params) do parts[#parts + 1] = enc(k) .. "=" .. enc(v) end
  table_sort(parts)
  return table_concat(parts, "&")
end

return M
