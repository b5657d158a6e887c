-- bench/serve/wrk.lua -- wrk script sending DynamoDB requests (make bench-serve).
--
--   wrk ... -s bench/serve/wrk.lua URL -- OP TABLE PARTITIONS
--
-- OP is get (GetItem of a random existing item), put (PutItem of a random
-- key, about 100 bytes) or query (Query of a random partition holding 10
-- items).  Items are {pk = "p<n>", sk = <1..10>, v = ...}, loaded by
-- bench/serve/load.js.  Every response must be 200: wrk counts the others
-- as errors (non-2xx) and the bench fails on any.
local op, tbl, parts
local counter = 0

function init(args)
  op, tbl, parts = args[1] or "get", args[2] or "bench", tonumber(args[3] or "1000")
  math.randomseed(os.time() + (tonumber(tostring({}):match("0x(%x+)"), 16) or 0) % 100000)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-amz-json-1.0"
  wrk.headers["X-Amz-Date"] = "20240101T000000Z"
  wrk.headers["Authorization"] = "AWS4-HMAC-SHA256 "
    .. "Credential=AKIDBENCH/20240101/us-east-1/dynamodb/aws4_request, "
    .. "SignedHeaders=host;x-amz-date, "
      .. "Signature=0000000000000000000000000000000000000000000000000000000000000000"
  if op == "get" then
    wrk.headers["X-Amz-Target"] = "DynamoDB_20120810.GetItem"
  elseif op == "put" then
    wrk.headers["X-Amz-Target"] = "DynamoDB_20120810.PutItem"
  else
    wrk.headers["X-Amz-Target"] = "DynamoDB_20120810.Query"
  end
end

local V = string.rep("x", 64)

function request()
  local p = math.random(parts)
  local body
  if op == "get" then
    body = string.format('{"TableName":"%s","Key":{"pk":{"S":"p%d"},"sk":{"N":"%d"}}}',
      tbl, p, math.random(10))
  elseif op == "put" then
    counter = counter + 1
    body = string.format('{"TableName":"%s","Item":{"pk":{"S":"w%d"},"sk":{"N":"%d"},'
      .. '"v":{"S":"%s"},"n":{"N":"%d"}}}', tbl, p, counter, V, counter)
  else
    body = string.format('{"TableName":"%s","KeyConditionExpression":"pk = :p",'
      .. '"ExpressionAttributeValues":{":p":{"S":"p%d"}}}', tbl, p)
  end
  return wrk.format(nil, nil, nil, body)
end

function done(summary, latency)
  io.write(string.format("RESULT requests=%d errors=%d non2xx=%d duration_us=%d p50_us=%d "
    .. "p99_us=%d\n",
    summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout, summary.errors.status, summary.duration,
    latency:percentile(50), latency:percentile(99)))
end
