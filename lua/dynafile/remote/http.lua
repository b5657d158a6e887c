--- dynafile.remote.http: HTTP/1.1 requests with keep-alive, for the
-- DynamoDB backend.
--
-- Two transports behind one interface.  Inside OpenResty, in a phase that
-- allows them, nginx's cosockets (`ngx.socket.tcp`, `sslhandshake`,
-- `setkeepalive`): a request never blocks the worker.  Everywhere else
-- (and in nginx's init phases) LuaSocket, with LuaSec for https.
-- LuaSocket's own `socket.http` closes the connection after every
-- request, and Debian has no HTTP client for cosockets, so the small part
-- that writes a request and reads a response on a kept-alive connection
-- lives here.
--
-- Invariants: a connection goes back to the pool only after its response
-- was read whole and the server did not ask to close it; every socket
-- operation is bounded by the caller's deadline; a failure says whether
-- the request may have reached the server (`sent`), which decides whether
-- the caller may resend a request that is not idempotent.
-- @module dynafile.remote.http

local type, tonumber, tostring, pairs, setmetatable = type, tonumber, tostring, pairs, setmetatable
local string_format, string_byte, string_match, table_concat, table_remove =
  string.format, string.byte, string.match, table.concat, table.remove
local math_max = math.max

local ngx = ngx -- luacheck: ignore 113 (nil outside OpenResty)

local M = {}

-- ------------------------------------------------------------- clock

local socket, gettime -- LuaSocket, loaded on first use (not needed inside nginx)
local function luasocket()
  if not socket then
    socket = require "socket"
    gettime = socket.gettime
  end
  return socket
end

-- Phases of nginx in which cosockets (and ngx.sleep) work.
local COSOCKET_PHASES = {
  rewrite = true, access = true, content = true, timer = true,
  ssl_cert = true, ssl_session_fetch = true, preread = true,
}

--- Whether this code runs where nginx cosockets can be used.
-- @treturn boolean
-- @raise never
function M.cosockets()
  return ngx ~= nil and ngx.socket ~= nil and COSOCKET_PHASES[ngx.get_phase()] == true
end

--- Seconds since the epoch, with sub-second precision.
-- @treturn number
-- @raise never
function M.now()
  if gettime then return gettime() end
  if ngx and ngx.now then
    ngx.update_time()
    return ngx.now()
  end
  return luasocket().gettime()
end

--- Sleep for s seconds without blocking an nginx worker when possible.
-- @tparam number s seconds
-- @return nothing
-- @raise never
function M.sleep(s)
  if s <= 0 then return end
  if M.cosockets() then return ngx.sleep(s) end
  luasocket().sleep(s)
end

-- ------------------------------------------------------------- URLs

--- Split an endpoint URL.
-- @tparam string url `http[s]://host[:port][/path]`
-- @treturn table|nil `{scheme, host, port, path, authority}`
-- @treturn string the reason when the URL is not usable
-- @raise never
function M.parse_url(url)
  if type(url) ~= "string" then return nil, "must be a string" end
  local scheme, rest = url:match("^(https?)://(.+)$")
  if not scheme then return nil, "must start with http:// or https://" end
  local authority, path = rest:match("^([^/]+)(.*)$")
  if not authority then return nil, "has no host" end
  local host, port = authority:match("^%[(.+)%]:(%d+)$")
  if not host then host, port = authority:match("^([^:]+):(%d+)$") end
  if not host then host = authority:match("^%[(.+)%]$") or authority end
  if host == "" or host:find("[%s@]") then return nil, "has a malformed host" end
  port = tonumber(port) or (scheme == "https" and 443 or 80)
  if port < 1 or port > 65535 then return nil, "has a port out of range" end
  if path == "" then path = "/" end
  local default = (scheme == "https" and port == 443) or (scheme == "http" and port == 80)
  return {
    scheme = scheme, host = host, port = port, path = path,
    authority = default and authority:gsub(":%d+$", "") or authority,
  }
end

-- ------------------------------------------------------------- sockets

-- A LuaSocket connection with the interface of a cosocket, so the request
-- code below serves both: settimeout takes seconds here.
local LS = {}
LS.__index = LS

local function ls_connect(ep, timeout, tls)
  local s = luasocket()
  local sock, err = s.tcp()
  if not sock then return nil, err end
  sock:settimeout(math_max(timeout, 0.001))
  local ok, cerr = sock:connect(ep.host, ep.port)
  if not ok then
    sock:close()
    return nil, cerr
  end
  sock:setoption("tcp-nodelay", true)
  if ep.scheme == "https" then
    local ssl = require "ssl"
    local conn, werr = ssl.wrap(sock, {
      mode = "client", protocol = "any",
      options = { "all", "no_sslv2", "no_sslv3", "no_tlsv1", "no_tlsv1_1" },
      verify = tls.verify == false and "none" or "peer",
      cafile = tls.cafile or "/etc/ssl/certs/ca-certificates.crt",
    })
    if not conn then
      sock:close()
      return nil, werr
    end
    conn:sni(ep.host)
    conn:settimeout(math_max(timeout, 0.001))
    local hok, herr = conn:dohandshake()
    if not hok then
      conn:close()
      return nil, "TLS handshake: " .. tostring(herr)
    end
    sock = conn
  end
  return setmetatable({ s = sock, reused = 0 }, LS)
end

--- Bound the connection's next operations.
-- @tparam number sec seconds
-- @return nothing
-- @raise never
function LS:settimeout(sec) self.s:settimeout(math_max(sec, 0.001)) end

--- Close the connection.
-- @return LuaSocket's result
-- @raise never
function LS:close() return self.s:close() end

-- A cosocket with the same interface (timeouts in seconds).
local NG = {}
NG.__index = NG

--- Bound the connection's next operations.
-- @tparam number sec seconds
-- @return nothing
-- @raise never
function NG:settimeout(sec)
  local ms = math_max(1, sec * 1000)
  self.s:settimeouts(ms, ms, ms)
end

--- Close the connection (nginx's pool does not keep it).
-- @return the cosocket's result
-- @raise never
function NG:close() return self.s:close() end

--- Whether an idle kept-alive connection may carry a request: one the
-- server has closed (or sent something on) is readable.
-- @treturn boolean
-- @raise never
function LS:alive()
  local s = luasocket()
  local raw = self.s
  local r = s.select({ raw }, nil, 0)
  if r and r[1] then return false end
  if raw.dirty and raw:dirty() then return false end
  return true
end

-- ------------------------------------------------------------- pool

--- A connection pool for one endpoint.
-- @type pool
local Pool = {}
Pool.__index = Pool

--- A pool for an endpoint.
-- @tparam table ep from parse_url
-- @tparam[opt] table opts `tls = {verify = bool, cafile = path}`,
--   `pool_size` (idle connections kept, default 16), `idle` (seconds an
--   idle connection is kept, default 30)
-- @treturn pool
-- @raise never
function M.pool(ep, opts)
  opts = opts or {}
  return setmetatable({
    ep = ep, tls = opts.tls or {}, idle = {}, size = opts.pool_size or 16,
    idle_secs = opts.idle or 30,
    key = string_format("dynafile:%s:%s:%d", ep.scheme, ep.host, ep.port),
  }, Pool)
end

--- Get a connection: an idle LuaSocket one that is still alive, or a new
-- one; inside nginx, a cosocket from nginx's own pool.
-- @tparam number timeout seconds to connect in
-- @tparam number now the time (M.now())
-- @treturn table|nil the connection
-- @treturn string message on failure
-- @raise never
function Pool:get(timeout, now)
  if ngx and M.cosockets() then
    local sock = ngx.socket.tcp()
    local ms = math_max(1, timeout * 1000)
    sock:settimeouts(ms, ms, ms)
    local ok, err = sock:connect(self.ep.host, self.ep.port, { pool = self.key })
    if not ok then return nil, err end
    if self.ep.scheme == "https" and sock:getreusedtimes() == 0 then
      local hok, herr = sock:sslhandshake(nil, self.ep.host, self.tls.verify ~= false)
      if not hok then
        sock:close()
        return nil, "TLS handshake: " .. tostring(herr)
      end
    end
    return setmetatable({ s = sock, ngx = true, reused = sock:getreusedtimes() }, NG)
  end
  local idle = self.idle
  while #idle > 0 do
    local c = table_remove(idle)
    -- a connection idle for a moment is taken as it is; one idle longer
    -- is first checked for a close by the server (a select: servers close
    -- idle connections after seconds, never within a quarter of one)
    local quiet = now - c.since
    if quiet < self.idle_secs and (quiet < 0.25 or c:alive()) then
      c.reused = c.reused + 1
      return c
    end
    c:close()
  end
  return ls_connect(self.ep, timeout, self.tls)
end

--- Hand a connection back after a whole response was read.
-- @tparam table c the connection
-- @tparam[opt] number now the time (M.now(), or earlier)
-- @return nothing
-- @raise never
function Pool:put(c, now)
  if c.ngx then
    local ok = c.s:setkeepalive(self.idle_secs * 1000, self.size)
    if not ok then c:close() end
    return
  end
  if #self.idle >= self.size then
    c:close()
    return
  end
  c.since = now or M.now()
  self.idle[#self.idle + 1] = c
end

--- Close every idle connection (nginx's pool closes its own).
-- @return nothing
-- @raise never
function Pool:close()
  for _, c in pairs(self.idle) do c:close() end
  self.idle = {}
end

-- LuaSocket and cosocket objects read alike: the raw socket is used
local function recv(c, p)
  return c.s:receive(p)
end

-- Read the body in chunked transfer coding.
local function read_chunked(c)
  local parts = {}
  while true do
    local line, err = recv(c, "*l")
    if not line then return nil, err end
    local size = tonumber(line:match("^%s*(%x+)"), 16)
    if not size then return nil, "malformed chunk size" end
    if size == 0 then
      -- trailers, up to the empty line
      repeat
        line, err = recv(c, "*l")
        if not line then return nil, err end
      until line == ""
      return table_concat(parts)
    end
    local data, derr = recv(c, size)
    if not data then return nil, derr end
    parts[#parts + 1] = data
    local crlf, cerr = recv(c, "*l")
    if not crlf then return nil, cerr end
  end
end

-- What the response headers that matter here say: the body's length
-- (Content-Length), whether it is chunked (Transfer-Encoding) and whether
-- the server closes the connection after it (Connection); other lines
-- are not parsed.  Returns true, the length (or nil), chunked, close; or
-- false and a message.
local function read_headers(s)
  local length, chunked, close
  while true do
    local line, err = s:receive("*l")
    if not line then return false, "receive: " .. tostring(err) end
    if line == "" then return true, length, chunked, close end
    local b, _, _, b4, _, _, _, _, b9 = string_byte(line, 1, 9)
    local c = b == 99 or b == 67
    if c and (b4 == 116 or b4 == 84) and (b9 == 108 or b9 == 76) then -- conTent-Length
      local v = string_match(line, "^[Cc]ontent%-[Ll]ength:(.*)$")
      if v then
        length = tonumber(v)
        if not length or length < 0 or length % 1 ~= 0 then
          return false, "malformed content-length"
        end
      end
    elseif c and (b4 == 110 or b4 == 78) then -- coNnection
      local v = string_match(line, "^[Cc]onnection:(.*)$")
      if v and v:lower():find("close", 1, true) then close = true end
    elseif b == 116 or b == 84 then -- t T: Transfer-Encoding
      local v = line:match("^[Tt]ransfer%-[Ee]ncoding:(.*)$")
      if v and v:lower():find("chunked", 1, true) then chunked = true end
    end
  end
end

--- Send one request and read its response.
-- @tparam string data the whole request: request line, headers (Host and
--   Content-Length included) and body
-- @tparam number deadline `M.now()` value after which the call gives up
-- @tparam[opt] number now the time, when the caller just read it
-- @treturn integer|nil the status
-- @treturn string the body; or, on failure, a message
-- @treturn boolean on failure, whether the request may have reached the
--   server (`sent`)
-- @raise never (a TLS library error aside)
function Pool:request(data, deadline, now)
  now = now or M.now()
  local left = deadline - now
  if left <= 0 then return nil, "timeout", false end
  local c, err = self:get(left, now)
  if not c then return nil, "connect: " .. tostring(err), false end
  -- a connection just made took some of the time
  if c.reused == 0 then left = deadline - M.now() end
  c:settimeout(left)
  local s = c.s
  local ok, serr = s:send(data)
  if not ok then
    c:close()
    -- a request cut short cannot have been parsed, let alone applied
    return nil, "send: " .. tostring(serr), false
  end
  local status_line, rerr = s:receive("*l")
  if not status_line then
    c:close()
    return nil, "receive: " .. tostring(rerr), true
  end
  local status = tonumber(string_match(status_line, "^HTTP/1%.%d (%d%d%d)"))
  if not status then
    c:close()
    return nil, "malformed status line", true
  end
  local hok, length, chunked, close = read_headers(s)
  if not hok then
    c:close()
    return nil, length, true
  end
  local resp, berr
  if chunked then
    resp, berr = read_chunked(c)
  elseif length then
    if length == 0 then
      resp = ""
    else
      resp, berr = s:receive(length)
    end
  else
    resp, berr = s:receive("*a")
    close = true
  end
  if not resp then
    c:close()
    return nil, "receive: " .. tostring(berr), true
  end
  if close then
    c:close()
  else
    -- (the time this request started: an idle connection is checked
    -- sooner, never later)
    self:put(c, now)
  end
  return status, resp
end

return M
