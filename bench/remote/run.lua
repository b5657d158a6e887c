--- bench/remote/run.lua: `make bench-remote` -- bench/core.lua's workloads
-- (load in batches, random get_item, whole-partition query, full scan
-- with a Lua filter) on a local database and through the DynamoDB backend
-- against dynalite and against `dynafile serve` (2 workers, sync "full"),
-- all in one run on 127.0.0.1; and the CPU the backend's client spends per
-- request beyond the bare HTTP exchange, against each server.
--
-- Rates are printed next to the local database's, as ratios (remote /
-- local).  The client's CPU: GetItem through db:get_item, against the
-- same GetItem as fixed, pre-built bytes on one kept-alive LuaSocket
-- connection (the bare exchange: send, read the status line, headers and
-- body); both timed with os.clock over 7 alternating rounds, medians
-- compared.  Target: the client adds at most 50 us per request.
--
--   BENCH_ITEMS (default 10000), BENCH_GETS (2000), BENCH_QUERIES (100)
local dynafile = require "dynafile"
local socket = require "socket"

local N = tonumber(os.getenv("BENCH_ITEMS")) or 10000
local PARTITIONS = math.max(1, math.floor(N / 100))
local GETS = tonumber(os.getenv("BENCH_GETS")) or 2000
local QUERIES = tonumber(os.getenv("BENCH_QUERIES")) or 100
local TARGET_US = 50

local function make_item(i)
  return {
    PK = "user#" .. (i % PARTITIONS), SK = string.format("item#%08d", i),
    name = "name " .. i, score = i % 1000, tags = { "tag" .. (i % 7), "tag" .. (i % 11) },
    payload = string.rep(string.char(97 + i % 26), 100),
  }
end

local function sequence(n, seed, range)
  math.randomseed(seed)
  local t = {}
  for j = 1, n do t[j] = math.random(0, range - 1) end
  return t
end

local function timed(f)
  local w0, c0 = socket.gettime(), os.clock()
  local r = f()
  return r, socket.gettime() - w0, os.clock() - c0
end

-- The workloads on one store; returns {name = {rate, cpu_per_op, result}}.
local function workloads(db)
  local out = {}
  local function run(name, n, f)
    local r, wall, cpu = timed(f)
    out[name] = { rate = n / wall, cpu = cpu / n, result = r }
    print(string.format("  %-34s %10.0f /s  %8.1f us CPU each", name, n / wall, cpu / n * 1e6))
  end
  run("load (batches of 1,000 puts)", N, function()
    for b = 0, N - 1, 1000 do
      assert(db:batch_write(function(w)
        for i = b, math.min(b + 999, N - 1) do w:put_item(make_item(i)) end
      end))
    end
    return N
  end)
  local keys = sequence(GETS, 42, N)
  run("random get_item", GETS, function()
    local sum = 0
    for j = 1, GETS do
      local i = keys[j]
      sum = sum + assert(db:get_item({ PK = "user#" .. (i % PARTITIONS),
        SK = string.format("item#%08d", i) })).score
    end
    return sum
  end)
  local parts = sequence(QUERIES, 7, PARTITIONS)
  run("query a whole partition (~100)", QUERIES, function()
    local count = 0
    for j = 1, QUERIES do
      for _ in db:query("user#" .. parts[j]) do count = count + 1 end
    end
    return count
  end)
  run("scan, Lua filter score > 899", N, function()
    local count = 0
    for _ in db:scan({ filter = function(item) return item.score > 899 end }) do
      count = count + 1
    end
    return count
  end)
  return out
end

-- The client's CPU per GetItem beyond the bare exchange, in us.
local function client_cpu(db, port)
  local key = { PK = "user#1", SK = string.format("item#%08d", 1) }
  assert(db:get_item(key))
  local body = string.format('{"TableName":"%s","Key":{"PK":{"S":"user#1"},"SK":{"S":"%s"}},'
    .. '"ConsistentRead":true}', db:schema().table, key.SK)
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
    local n
    while true do
      local line = assert(s:receive("*l"))
      if line == "" then break end
      local v = line:match("^[Cc]ontent%-[Ll]ength:%s*(%d+)")
      if v then n = tonumber(v) end
    end
    assert(s:receive(n))
  end
  local R, M = 7, 300
  local api, raw = {}, {}
  for r = 1, R do
    collectgarbage()
    local c0 = os.clock()
    for _ = 1, M do db:get_item(key) end
    api[r] = (os.clock() - c0) / M * 1e6
    collectgarbage()
    c0 = os.clock()
    for _ = 1, M do bare() end
    raw[r] = (os.clock() - c0) / M * 1e6
  end
  s:close()
  table.sort(api)
  table.sort(raw)
  return api[math.floor((R + 1) / 2)], raw[math.floor((R + 1) / 2)]
end

-- Start a server script printing "PORT PID"; srv.pid is the script's own
-- process (the shell's, which execs it), which stops its server on TERM.
local function start(cmd)
  local p = assert(io.popen("echo $$; exec " .. cmd, "r"))
  local pid = tonumber(p:read("*l"))
  local line = p:read("*l")
  local port = (line or ""):match("^(%d+) %d+$")
  if not port then
    p:close()
    return nil, line
  end
  return { port = tonumber(port), pid = pid, pipe = p }
end

local function stop(srv)
  os.execute("kill " .. srv.pid .. " 2>/dev/null")
  srv.pipe:close()
end

print(string.format("remote: %d items in %d partitions; %d gets, %d queries (%s)", N, PARTITIONS,
  GETS, QUERIES, _VERSION .. (jit and (" " .. jit.version) or "")))
local dir = os.tmpname()
os.remove(dir)
print("local database (sync \"full\")")
local db = assert(dynafile.open(dir, { pk = "PK", sk = "SK" }))
local here = workloads(db)
db:close()
os.execute("rm -rf '" .. dir .. "'")

local servers = {}
local dl, why = start("node tests/js/dynalite-server.js")
if dl then servers[#servers + 1] = { name = "dynalite", srv = dl } else
  print("dynalite did not start: " .. tostring(why))
end
-- dynafile serve from this checkout (its LuaJIT module: the Makefile
-- target builds it), 2 nginx workers, sync "full" as the local database,
-- a new data directory
local sv
sv, why = start("node tests/js/serve-server.js --workers 2 -- --sync full")
if sv then servers[#servers + 1] = { name = "dynafile serve", srv = sv } else
  print("dynafile serve did not start: " .. tostring(why))
end

local missed = 0
for _, s in ipairs(servers) do
  local endpoint = "http://127.0.0.1:" .. s.srv.port
  print(string.format("DynamoDB backend -> %s (%s)", s.name, endpoint))
  local rdb = assert(dynafile.open("dynamodb://bench" .. os.time(), { endpoint = endpoint,
    region = "us-east-1" }))
  local there = workloads(rdb)
  print(string.format("  %-34s %10s %12s", "ratio to the local database", "rate", "CPU each"))
  for _, name in ipairs { "load (batches of 1,000 puts)", "random get_item",
    "query a whole partition (~100)", "scan, Lua filter score > 899" } do
    local a, b = there[name], here[name]
    assert(a.result == b.result, name .. ": the stores disagree")
    print(string.format("  %-34s %10.4f %11.1fx", name, a.rate / b.rate, a.cpu / b.cpu))
  end
  local api, raw = client_cpu(rdb, s.srv.port)
  local adds = api - raw
  local ok = adds <= TARGET_US
  if not ok then missed = missed + 1 end
  print(string.format("  client CPU per GetItem: %.1f us through db:get_item, %.1f us for the "
    .. "bare exchange: the client adds %.1f us (target <= %d us: %s)", api, raw, adds,
    TARGET_US, ok and "met" or "MISSED"))
  rdb:close()
  stop(s.srv)
end
if #servers < 2 then missed = missed + 1 end
os.exit(missed == 0 and 0 or 1)
