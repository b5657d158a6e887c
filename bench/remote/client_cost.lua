--- bench/remote/client_cost.lua: the instructions the DynamoDB backend's
-- client spends per GetItem beyond the bare HTTP exchange, counted by
-- callgrind (repeatable, unlike CPU times on a shared machine).  Run by
-- bench/remote/client_cost.sh, which starts dynalite and runs this script
-- under callgrind twice per mode, with N and 5N requests: the difference
-- divided by 4N is the cost of one request, start-up excluded.
--
--   lua bench/remote/client_cost.lua ENDPOINT MODE N
--
-- MODE "api": N db:get_item calls; "bare": the same GetItem as fixed,
-- pre-built bytes on one kept-alive LuaSocket connection (send, read the
-- status line, headers and body); "sign": N signatures of that request
-- alone (sigv4.sign_dynamodb); "codec": N decodes of the answer (cjson,
-- and the item's conversion to Lua values);
-- "http": the bare request through the client's HTTP layer (its pool).
-- Modes that send make one warm-up request first.  COST_CRYPTO names the
-- signer's provider of SHA-256/HMAC (default: the fastest it has).
local dynafile = require "dynafile"
local socket = require "socket"
-- COST_CRYPTO=luaossl (or "libcrypto (FFI)"): the signer's other providers
if os.getenv("COST_CRYPTO") then
  assert(require("dynafile.remote.sigv4").use(os.getenv("COST_CRYPTO")))
end

local endpoint, mode, n = arg[1], arg[2], tonumber(arg[3])
local port = tonumber(endpoint:match(":(%d+)$"))
local name = "cost" .. (os.getenv("COST_TABLE") or "")
local db = assert(dynafile.open("dynamodb://" .. name, { endpoint = endpoint,
  region = "us-east-1", pk = "PK", sk = "SK", credentials = { access_key_id = "AKIDCOST",
  secret_access_key = "secret" } }))
local key = { PK = "user#1", SK = "item#00000001" }
if os.getenv("COST_SETUP") then
  assert(db:put_item { PK = key.PK, SK = key.SK, name = "name 1", score = 1,
    tags = { "tag1", "tag1" }, payload = string.rep("b", 100) })
  os.exit(0)
end

if mode == "api" then
  assert(db:get_item(key))
  for _ = 1, n do db:get_item(key) end
elseif mode == "bare" then
  local body = string.format('{"TableName":"%s","Key":{"PK":{"S":"%s"},"SK":{"S":"%s"}},'
    .. '"ConsistentRead":true}', name, key.PK, key.SK)
  local req = "POST / HTTP/1.1\r\nhost: 127.0.0.1:" .. port .. "\r\ncontent-type: "
    .. "application/x-amz-json-1.0\r\nx-amz-target: DynamoDB_20120810.GetItem\r\n"
    .. "x-amz-date: 20200101T000000Z\r\nauthorization: AWS4-HMAC-SHA256 Credential=a/20200101/"
    .. "us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0\r\ncontent-length: "
    .. #body .. "\r\n\r\n" .. body
  local s = assert(socket.tcp())
  assert(s:connect("127.0.0.1", port))
  s:setoption("tcp-nodelay", true)
  local function bare()
    assert(s:send(req))
    local len
    while true do
      local line = assert(s:receive("*l"))
      if line == "" then break end
      local v = line:match("^[Cc]ontent%-[Ll]ength:%s*(%d+)")
      if v then len = tonumber(v) end
    end
    assert(s:receive(len))
  end
  bare()
  for _ = 1, n do bare() end
  s:close()
elseif mode == "sign" then
  local sigv4 = require "dynafile.remote.sigv4"
  local body = '{"TableName":"cost","Key":{"PK":{"S":"user#1"},"SK":{"S":"item#00000001"}},'
    .. '"ConsistentRead":true}'
  local creds = { access_key_id = "AKIDCOST", secret_access_key = "secret" }
  for _ = 1, n do
    sigv4.sign_dynamodb("DynamoDB_20120810.GetItem", body, "127.0.0.1:" .. port, "/",
      "us-east-1", creds)
  end
elseif mode == "http" then
  -- the client's HTTP layer alone: the bare request through its pool
  local http = require "dynafile.remote.http"
  local pool = http.pool(assert(http.parse_url(endpoint)), {})
  local body = string.format('{"TableName":"%s","Key":{"PK":{"S":"%s"},"SK":{"S":"%s"}},'
    .. '"ConsistentRead":true}', name, key.PK, key.SK)
  local req = "POST / HTTP/1.1\r\nhost: 127.0.0.1:" .. port .. "\r\ncontent-type: "
    .. "application/x-amz-json-1.0\r\nx-amz-target: DynamoDB_20120810.GetItem\r\n"
    .. "x-amz-date: 20200101T000000Z\r\nauthorization: AWS4-HMAC-SHA256 Credential=a/20200101/"
    .. "us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0\r\ncontent-length: "
    .. #body .. "\r\n\r\n" .. body
  assert(pool:request(req, http.now() + 10) == 200)
  for _ = 1, n do pool:request(req, http.now() + 10) end
elseif mode == "codec" then
  -- the answer's item: cjson's decode into AttributeValue tables, turned
  -- into Lua values in place, as db:get_item does (the request's JSON is
  -- written as text there, counted with the rest)
  local client = require "dynafile.remote.client"
  local values = require "dynafile.remote.values"
  local json = client.json
  local answer = json.encode { Item = values.encode_item(assert(db:get_item(key)), "get_item") }
  for _ = 1, n do
    values.take_item(json.decode(answer).Item)
  end
else
  error("mode must be api, bare, sign, http or codec")
end
