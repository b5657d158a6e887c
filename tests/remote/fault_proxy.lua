--- tests/remote/fault_proxy.lua -- an HTTP proxy on 127.0.0.1 that
-- misbehaves on purpose, for the DynamoDB backend's fault tests.
--
--   lua5.4 tests/remote/fault_proxy.lua UPSTREAM_PORT SEED FAULTS [COUNTS_FILE]
--
-- FAULTS: comma-separated name=probability pairs, e.g.
--   drop_before=0.05,drop_after=0.05,delay=0.05,throttle=0.1,e500=0.05,e500_after=0.05
-- For each request, one fault is drawn (or none):
--   drop_before  close the client's connection; nothing is forwarded
--   drop_after   forward, read the answer, close without answering
--   delay        forward, answer after DELAY seconds (env FAULT_DELAY, 3),
--                then close; the proxy serves other connections meanwhile
--   throttle     answer 400 ThrottlingException; nothing is forwarded
--   e500         answer 500 InternalServerError; nothing is forwarded
--   e500_after   forward, then answer 500 instead of the real answer
-- Prints "PORT PID" on its first line; after each request, rewrites
-- COUNTS_FILE with one "fault count" line per fault drawn so far.  Runs
-- until it is killed.  Each connection is served one request at a time (the
-- fault tests send one request at a time); a delayed answer holds only its
-- own connection, so a client that ignores its deadline waits the whole
-- DELAY while every other request is served.
local socket = require "socket"

local upstream_port = assert(tonumber(arg[1]), "upstream port")
local seed = tonumber(arg[2]) or 1
local faults = {}
for name, p in (arg[3] or ""):gmatch("([%w_]+)=([%d%.]+)") do
  faults[#faults + 1] = { name = name, p = tonumber(p) }
end
local DELAY = tonumber(os.getenv("FAULT_DELAY") or "") or 3
local counts_file = arg[4]
local counts = {}
math.randomseed(seed)

local server = assert(socket.bind("127.0.0.1", 0))
local _, port = server:getsockname()
local pid = io.open("/proc/self/stat"):read("*l"):match("^(%d+)")
io.stdout:write(port, " ", pid, "\n")
io.stdout:flush()

local function read_message(c)
  local first, err = c:receive("*l")
  if not first then return nil, err end
  local headers, lines = {}, { first }
  while true do
    local line = c:receive("*l")
    if not line then return nil, "closed" end
    lines[#lines + 1] = line
    if line == "" then break end
    local k, v = line:match("^([^:]+):%s*(.-)%s*$")
    if k then headers[k:lower()] = v end
  end
  local n = tonumber(headers["content-length"] or "0")
  local body = ""
  if n > 0 then
    body = c:receive(n)
    if not body then return nil, "closed" end
  end
  return { first = first, headers = headers,
    raw = table.concat(lines, "\r\n") .. "\r\n" .. body,
    body = body }
end

local function forward(req)
  local u = socket.tcp()
  u:settimeout(30)
  assert(u:connect("127.0.0.1", upstream_port))
  u:send(req.raw)
  local resp = read_message(u)
  u:close()
  return resp
end

local function error_response(status, typ, msg)
  local body = string.format('{"__type":"com.amazonaws.dynamodb.v20120810#%s","message":"%s"}',
    typ, msg)
  return string.format("HTTP/1.1 %d Error\r\ncontent-type: application/x-amz-json-1.0\r\n"
    .. "content-length: %d\r\n\r\n%s", status, #body, body)
end

local function draw()
  local r = math.random()
  for _, f in ipairs(faults) do
    if r < f.p then return f.name end
    r = r - f.p
  end
  return "pass"
end

local clients = {}
local held = {} -- delayed answers: { sock, raw, due }, in the order held

local function remove_client(s)
  for i, c in ipairs(clients) do
    if c == s then table.remove(clients, i) break end
  end
end

-- Send the held answers that are due (the client may have gone: errors
-- are ignored), and close their connections.
local function release_due()
  local now = socket.gettime()
  local i = 1
  while i <= #held do
    local h = held[i]
    if h.due <= now then
      h.sock:settimeout(0)
      h.sock:send(h.raw)
      h.sock:close()
      table.remove(held, i)
    else
      i = i + 1
    end
  end
end

local function wait_time()
  local t = 5
  for _, h in ipairs(held) do
    t = math.min(t, math.max(0, h.due - socket.gettime()))
  end
  return t
end

while true do
  local ready = socket.select({ server, table.unpack(clients) }, nil, wait_time())
  release_due()
  for _, s in ipairs(ready) do
    if s == server then
      local c = server:accept()
      if c then clients[#clients + 1] = c end
    else
      local req = read_message(s)
      local keep = req ~= nil
      if req then
        local fault = draw()
        counts[fault] = (counts[fault] or 0) + 1
        if counts_file then
          local f = io.open(counts_file, "w")
          for k, v in pairs(counts) do f:write(k, " ", v, "\n") end
          f:close()
        end
        if fault == "drop_before" then
          keep = false
        elseif fault == "throttle" then
          s:send(error_response(400, "ThrottlingException",
            "Rate of requests exceeds the allowed throughput."))
        elseif fault == "e500" then
          s:send(error_response(500, "InternalServerError", "Internal server error"))
        else
          local resp = forward(req)
          if fault == "drop_after" then
            keep = false
          elseif fault == "e500_after" then
            s:send(error_response(500, "InternalServerError", "Internal server error"))
          elseif fault == "delay" then
            held[#held + 1] = { sock = s, raw = resp.raw, due = socket.gettime() + DELAY }
            remove_client(s)
            keep = nil -- held: neither served again nor closed now
          else
            s:send(resp.raw)
          end
        end
      end
      if keep == false then
        s:close()
        remove_client(s)
      end
    end
  end
end
