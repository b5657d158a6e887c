--- tests/js/dynalite.lua -- start dynalite (tests/js/dynalite-server.js) on a
-- free 127.0.0.1 port from a Lua test, and stop it.
--
--   local dynalite = dofile("tests/js/dynalite.lua")
--   local d = assert(dynalite.start())      -- d.port, d.pid, d.endpoint
--   ...                                     -- http://127.0.0.1:<port>
--   d:stop()
--
-- Needs `make js-deps` (tests/js/node_modules).  The server also stops by
-- itself when the Lua process that started it exits.  Runs from the
-- repository root or with DYNAFILE_ROOT set to it.
local M = {}

local Server = {}
Server.__index = Server

local function root()
  local r = os.getenv("DYNAFILE_ROOT")
  if r and r ~= "" then return r end
  local src = debug.getinfo(1, "S").source
  local dir = src:match("^@(.*)/tests/js/dynalite%.lua$")
  return dir or "."
end

--- Start a dynalite server.
-- @treturn table|nil the server: `port`, `pid`, `endpoint`, `stop`
-- @treturn string the reason it did not start
function M.start()
  local script = root() .. "/tests/js/dynalite-server.js"
  local f = io.open(script)
  if not f then return nil, "no " .. script end
  f:close()
  local p = io.popen("exec node '" .. script .. "' 2>&1", "r")
  if not p then return nil, "cannot run node" end
  local line = p:read("*l")
  local port, pid = (line or ""):match("^(%d+) (%d+)$")
  if not port then
    local rest = p:read("*a") or ""
    p:close()
    return nil, "dynalite did not start: " .. tostring(line) .. "\n" .. rest
  end
  return setmetatable({
    port = tonumber(port), pid = tonumber(pid), pipe = p,
    endpoint = "http://127.0.0.1:" .. port,
  }, Server)
end

--- Stop the server and wait for it to exit.
function Server:stop()
  if self.pipe then
    os.execute("kill " .. self.pid .. " 2>/dev/null")
    self.pipe:close()
    self.pipe = nil
  end
end

return M
