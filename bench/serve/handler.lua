--- bench/serve/handler.lua -- the Lua cost of one `dynafile serve` request,
-- measured in-process (make bench-serve-handler).
--
--   luajit bench/serve/handler.lua [N] [OP...]    (OP: get, put, query)
--
-- Runs serve's request handler (dynafile.serve.handle) under the LuaJIT
-- nginx uses, with a stand-in for nginx's `ngx` API that hands it each
-- request body and keeps the answer, on a table of 20,000 items like
-- bench/serve/load.js makes (pk "p<n>", sk 1..10, a 64-byte v).  For each
-- operation it prints the CPU microseconds per request (os.clock over N
-- requests after a warm-up), which is everything serve's Lua code and the
-- dynafile calls cost -- JSON in and out, request checks, the catalog,
-- the read or write, the answer -- without nginx's HTTP work (parsing,
-- headers, the socket), which the stand-in does not do.  A machine shared
-- with other work moves wall-clock rates; CPU time per request in one
-- process moves much less, and `DYNAFILE_CALLGRIND=1 valgrind
-- --tool=callgrind --instr-atstart=no luajit bench/serve/handler.lua 3000
-- get` counts instructions when even that is too noisy (see below).  With
-- DYNAFILE_PROFILE=1 it also prints LuaJIT's sampling
-- profile (jit.p) of the measured requests, in the mode DYNAFILE_PROFILE_MODE
-- gives (default "Fl": by function and line; "v": by VM state -- compiled,
-- interpreted, C code, garbage collector).
-- Every answer is checked: a request that is not answered 200 stops it.
local N = tonumber(arg[1]) or 20000
local OPS = { select(2, ...) }
if #OPS == 0 then OPS = { "get", "query", "put" } end
local PARTS = 2000

-- ------------------------------------------------------------ ngx stand-in
local shm_data = {}
local shm = {
  get = function(_, k) return shm_data[k] end,
  incr = function(_, k, by, init)
    shm_data[k] = (shm_data[k] or init or 0) + by
    return shm_data[k]
  end,
  set = function(_, k, v) shm_data[k] = v return true end,
}
local current = { body = "", target = "" }
local answer = { status = nil, body = nil }
local var = setmetatable({}, { __index = function(_, k)
  if k == "http_x_amz_target" then return current.target end
  if k == "http_content_type" then return "application/x-amz-json-1.0" end
  if k == "http_authorization" then
    return "AWS4-HMAC-SHA256 Credential=AKIDBENCH/20240101/us-east-1/dynamodb/aws4_request, "
      .. "SignedHeaders=host;x-amz-date, Signature=" .. string.rep("0", 64)
  end
  if k == "http_host" then return "127.0.0.1:8000" end
  return nil
end })
ngx = { -- luacheck: ignore 111
  var = var,
  header = {},
  shared = { dynafile_serve = shm },
  req = {
    get_method = function() return "POST" end,
    read_body = function() end,
    get_body_data = function() return current.body end,
    get_body_file = function() return nil end,
  },
  print = function(s) answer.body = s end,
  exit = function(st) answer.status = st end,
  crc32_long = function(s) return #s end,
  now = os.time,
  time = os.time,
  log = function(_, ...) io.stderr:write(table.concat({ ... }), "\n") end,
  ERR = 4, CRIT = 3, WARN = 5, INFO = 7,
  worker = { id = function() return 1 end },
  timer = { every = function() return true end },
  sleep = function() end,
}

local serve = require "dynafile.serve"
local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. dir .. "/data"))
serve.init({ dir = dir .. "/data", sync = os.getenv("SERVE_SYNC") or "normal" })
serve.init_worker()

-- Each request runs in a coroutine of its own, as nginx's Lua module runs
-- a content handler: a compiled trace cannot return into the C frame
-- below, so traces form as they do in the workers.
local function handle_chunk() serve.handle() end
local function call(target, body)
  current.target, current.body = "DynamoDB_20120810." .. target, body
  answer.status, answer.body = nil, nil
  local co = coroutine.create(handle_chunk)
  local ok, err = coroutine.resume(co)
  if not ok then error(err, 0) end
  if answer.status ~= 200 then
    error(string.format("%s answered %s: %s", target, tostring(answer.status),
      tostring(answer.body)))
  end
  return answer.body
end

call("CreateTable", [[{"TableName":"bench","BillingMode":"PAY_PER_REQUEST",
  "AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"},
    {"AttributeName":"sk","AttributeType":"N"}],
  "KeySchema":[{"AttributeName":"pk","KeyType":"HASH"},{"AttributeName":"sk","KeyType":"RANGE"}]}]])
local V = string.rep("x", 64)
for p = 1, PARTS do
  local reqs = {}
  for s = 1, 10 do
    reqs[s] = string.format('{"PutRequest":{"Item":{"pk":{"S":"p%d"},"sk":{"N":"%d"},'
      .. '"v":{"S":"%s"}}}}', p, s, V)
  end
  for h = 0, 1 do
    call("BatchWriteItem", '{"RequestItems":{"bench":['
      .. table.concat(reqs, ",", h * 5 + 1, h * 5 + 5) .. ']}}')
  end
end

local counter = 0
local BODY = {
  get = function(r)
    return "GetItem", string.format('{"TableName":"bench","Key":{"pk":{"S":"p%d"},'
      .. '"sk":{"N":"%d"}}}', r % PARTS + 1, r % 10 + 1)
  end,
  put = function(r)
    counter = counter + 1
    return "PutItem", string.format('{"TableName":"bench","Item":{"pk":{"S":"w%d"},'
      .. '"sk":{"N":"%d"},"v":{"S":"%s"},"n":{"N":"%d"}}}', r % PARTS + 1, counter, V, counter)
  end,
  query = function(r)
    return "Query", string.format('{"TableName":"bench","KeyConditionExpression":"pk = :p",'
      .. '"ExpressionAttributeValues":{":p":{"S":"p%d"}}}', r % PARTS + 1)
  end,
}

-- the answers are what DynamoDB sends
do
  local got = call(BODY.get(0))
  assert(got:find('"v":{"S":"' .. V .. '"}', 1, true), got)
  got = call(BODY.query(0))
  assert(got:find('"Count":10', 1, true), got)
end

local profile = os.getenv("DYNAFILE_PROFILE") == "1"
-- Under `valgrind --tool=callgrind --instr-atstart=no`, DYNAFILE_CALLGRIND=1
-- counts the measured requests only (callgrind_control turns the
-- instrumentation on and off around them): LuaJIT's compiler does not make
-- the same traces from run to run, so the count of the set-up differs
-- between runs and two runs cannot be subtracted.  DYNAFILE_JITV=FILE logs
-- the compiler's traces and aborts over the measured operations (jit.v).
local counting = os.getenv("DYNAFILE_CALLGRIND") == "1"
local function callgrind(state)
  local ffi = require "ffi"
  pcall(ffi.cdef, "int getpid(void);")
  local cmd = "callgrind_control --instr=" .. state .. " " .. ffi.C.getpid() .. " >/dev/null"
  assert(os.execute(cmd), cmd)
end
if os.getenv("DYNAFILE_JITV") then require("jit.v").start(os.getenv("DYNAFILE_JITV")) end
for _, op in ipairs(OPS) do
  local make = assert(BODY[op], "unknown operation " .. op)
  -- requests made up front: their making is not measured
  local targets, bodies = {}, {}
  for i = 1, N do targets[i], bodies[i] = make(i * 7919) end
  for i = 1, 2000 do call(make(i * 104729)) end -- warm-up
  collectgarbage()
  if profile then
    require("jit.p").start(os.getenv("DYNAFILE_PROFILE_MODE") or "Fl", "/dev/stderr")
  end
  if counting then callgrind("on") end
  local t0 = os.clock()
  for i = 1, N do call(targets[i], bodies[i]) end
  local dt = os.clock() - t0
  if counting then callgrind("off") end
  if profile then require("jit.p").stop() end
  print(string.format("%-6s %8.1f us CPU per request (%d requests, serve's Lua path in-process)",
    op, dt / N * 1e6, N))
end
os.execute("rm -rf " .. dir)
