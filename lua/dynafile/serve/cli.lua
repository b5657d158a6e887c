--- dynafile.serve.cli: `dynafile serve DIR` -- start nginx serving the
-- DynamoDB API on the tables under DIR, in the foreground.
--
-- It finds nginx, its Lua module and the dynafile module built for
-- LuaJIT (nginx's Lua), writes an nginx configuration into DIR/@serve/run
-- (rewritten at every start), and runs nginx in the foreground with it
-- (`daemon off`, logs on stderr).  nginx stays a child of this process,
-- which waits for it: Ctrl-C stops both; a SIGTERM to this process stops
-- nginx too (the master asks the kernel for SIGTERM when its parent exits,
-- see dynafile.serve.init), and nginx's fast shutdown ends the workers
-- after the requests they are running.
--
-- Runs under any Lua the `dynafile` command runs under; only nginx's
-- workers run LuaJIT.
-- @module dynafile.serve.cli

local type, tostring, tonumber, ipairs, pairs = type, tostring, tonumber, ipairs, pairs
local string_format, string_match, string_gsub = string.format, string.match, string.gsub
local string_find = string.find
local table_concat = table.concat
local io_open, os_execute, os_getenv, os_remove = io.open, os.execute, os.getenv, os.remove

local M = {}

M.USAGE = [[
usage: dynafile serve DIR [--port N] [--host ADDR] [--workers N] [--auth FILE]
                          [--sync full|normal|off] [--region NAME]
Serve the DynamoDB API (the one AWS SDKs and the AWS CLI speak) on the
tables under DIR, each table an ordinary dynafile database DIR/<TableName>,
until Ctrl-C (SIGINT to its process group) or SIGTERM.  Runs nginx with its
Lua module (Debian packages nginx-light and libnginx-mod-http-lua) and needs
the dynafile module built for LuaJIT (make LUA=luajit).
  --port N       TCP port (default 8000)
  --host ADDR    address to listen on (default 127.0.0.1, loopback only)
  --workers N    nginx worker processes (default: the number of CPU cores)
  --auth FILE    verify every request's AWS Signature Version 4 against the
                 access keys in FILE (lines "ACCESS_KEY_ID SECRET_KEY";
                 # starts a comment); without it any credentials are taken
  --sync MODE    durability of the tables' commits: normal (default: a
                 crash of the machine may lose the last commits, never
                 corrupts), full (nothing acknowledged is ever lost) or off
  --region NAME  region named in ARNs when a request does not sign with one
                 (default us-east-1)]]

local MODULE_DIRS = { "/usr/lib/nginx/modules", "/usr/share/nginx/modules" }

local function file_exists(p)
  local f = io_open(p, "rb")
  if f then f:close() return true end
  return false
end

local function shell_quote(s)
  return "'" .. string_gsub(s, "'", "'\\''") .. "'"
end

local function read_command(cmd)
  local p = io.popen(cmd .. " 2>/dev/null")
  if not p then return nil end
  local out = p:read("a")
  p:close()
  out = out and string_gsub(out, "%s+$", "")
  if out == "" then return nil end
  return out
end

-- The nginx binary and its module directory, or nil and the reason.
function M.find_nginx()
  local nginx = os_getenv("DYNAFILE_NGINX")
  if nginx and nginx ~= "" and not file_exists(nginx) then nginx = false end
  if nginx == nil or nginx == "" then
    nginx = nil
    for _, p in ipairs { "/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx" } do
      if file_exists(p) then nginx = p break end
    end
    nginx = nginx or read_command("command -v nginx")
  end
  if not nginx then
    return nil, "nginx is not installed: install the Debian packages nginx-light and "
      .. "libnginx-mod-http-lua (apt-get install nginx-light libnginx-mod-http-lua)"
  end
  local dirs = MODULE_DIRS
  local env_dir = os_getenv("DYNAFILE_NGINX_MODULES")
  if env_dir and env_dir ~= "" then dirs = { env_dir } end
  for _, d in ipairs(dirs) do
    if d ~= "" and file_exists(d .. "/ngx_http_lua_module.so") then
      if not file_exists(d .. "/ndk_http_module.so") then
        return nil, "nginx's Lua module needs the NDK module (" .. d .. "/ndk_http_module.so): "
          .. "install the Debian package libnginx-mod-http-ndk"
      end
      return nginx, d
    end
  end
  return nil, "nginx's Lua module is not installed: install the Debian package "
    .. "libnginx-mod-http-lua (apt-get install libnginx-mod-http-lua)"
end

local function absolute(dir)
  if string_match(dir, "^/") then return dir end
  local cwd = os_getenv("PWD")
  if not cwd or cwd == "" then cwd = read_command("pwd") or "." end
  return cwd .. "/" .. dir
end

-- The directory holding dynafile's Lua files (the one this file is in,
-- two levels up: DIR/dynafile/serve/cli.lua).
local function lua_dir()
  local src = debug.getinfo(1, "S").source
  local dir = string_match(src, "^@(.*)/dynafile/serve/cli%.lua$")
  if not dir then return nil end
  return absolute(dir)
end

-- The directory holding dynafile/core.so built for LuaJIT, or nil.
function M.find_luajit_module(ldir)
  local cands = { os_getenv("DYNAFILE_LUAJIT_CPATH") }
  if ldir then
    cands[#cands + 1] = ldir .. "/../build/luajit"
    cands[#cands + 1] = (string_gsub(ldir, "share/lua/5%.%d$", "lib/lua/5.1"))
  end
  for _, d in ipairs { "/usr/local/lib/lua/5.1", "/usr/lib/x86_64-linux-gnu/lua/5.1",
      "/usr/lib/lua/5.1" } do
    cands[#cands + 1] = d
  end
  for _, d in ipairs(cands) do
    if d ~= "" and file_exists(d .. "/dynafile/core.so") then return d end
  end
  return nil
end

-- The number of CPUs this process may run on (/sys, without a subprocess:
-- startup time counts).
local function cpu_count()
  local f = io_open("/sys/devices/system/cpu/online", "r")
  local n = 0
  if f then
    local line = f:read("l") or ""
    f:close()
    for range in line:gmatch("[^,]+") do
      local a, b = range:match("^(%d+)%-(%d+)$")
      if a then n = n + tonumber(b) - tonumber(a) + 1 elseif range:match("^%d+$") then n = n + 1 end
    end
  end
  if n == 0 then n = tonumber(read_command("nproc") or "") or 1 end
  return n
end

-- Lua has no mkdir: `mkdir -p`, run only when one of dirs is missing (a
-- directory opens for reading on Linux), so a restart spawns nothing.
local function mkdir_p(dirs)
  local q = {}
  for _, d in ipairs(dirs) do
    if not file_exists(d .. "/.") then q[#q + 1] = shell_quote(d) end
  end
  if #q == 0 then return true end
  local r = os_execute("mkdir -p " .. table_concat(q, " "))
  return r == true or r == 0
end

-- A line of /proc/self/<file> matching pattern, captured.
local function proc_self(file, pattern)
  local f = io_open("/proc/self/" .. file, "r")
  if not f then return nil end
  for line in f:lines() do
    local v = line:match(pattern)
    if v then f:close() return v end
  end
  f:close()
  return nil
end

local function my_pid()
  local f = io_open("/proc/self/stat", "r")
  if not f then return nil end
  local line = f:read("l")
  f:close()
  return tonumber(string_match(line or "", "^(%d+)"))
end

-- The pid of the nginx master of a `dynafile serve` running on dir (the
-- pid its lock file names, when that process is an nginx master started
-- with this directory's configuration), or nil.  The master's lock is
-- what guards the directory; this only spares a second server from
-- touching the first one's run files.
local function running_master(dir)
  local f = io_open(dir .. "/@serve/lock", "rb")
  if not f then return nil end
  local pid = tonumber(f:read("l") or "")
  f:close()
  if not pid then return nil end
  local c = io_open("/proc/" .. pid .. "/cmdline", "rb")
  if not c then return nil end
  local cmd = c:read("a") or ""
  c:close()
  if string_find(cmd, "nginx", 1, true)
    and string_find(cmd, dir .. "/@serve/run/conf/nginx.conf", 1, true) then
    return pid
  end
  return nil
end
M.running_master = running_master

-- A Lua string literal for the configuration.
local function lua_string(s)
  return string_format("%q", s)
end


--- The nginx configuration text.
-- @tparam table c `modules`, `workers`, `user`, `listen`, `lua_path`,
--   `lua_cpath`, `serve` (the table for dynafile.serve.init)
function M.config_text(c)
  local init = {}
  local keys = {}
  for k in pairs(c.serve) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v = c.serve[k]
    init[#init + 1] = string_format("%s = %s", k, type(v) == "string" and lua_string(v)
      or tostring(v))
  end
  local lines = {
    "# Written by `dynafile serve` at every start; edits are lost.",
    "load_module " .. c.modules .. "/ndk_http_module.so;",
    "load_module " .. c.modules .. "/ngx_http_lua_module.so;",
    "daemon off;",
    "master_process on;",
    "worker_processes " .. c.workers .. ";",
    c.user and ("user " .. c.user .. ";") or "",
    "pid run/nginx.pid;",
    "error_log stderr warn;",
    "events {",
    "  worker_connections " .. c.connections .. ";",
    "}",
    "http {",
    "  access_log off;",
    "  server_tokens off;",
    "  client_body_temp_path tmp/body;",
    "  proxy_temp_path tmp/proxy;",
    "  fastcgi_temp_path tmp/fastcgi;",
    "  uwsgi_temp_path tmp/uwsgi;",
    "  scgi_temp_path tmp/scgi;",
    -- DynamoDB's largest requests (BatchWriteItem: 25 items of 400 KB) fit;
    -- bodies are kept in memory up to this size
    "  client_max_body_size 16m;",
    "  client_body_buffer_size 1m;",
    "  keepalive_requests 10000000;",
    "  keepalive_timeout 300s;",
    "  lua_package_path " .. lua_string(c.lua_path) .. ";",
    "  lua_package_cpath " .. lua_string(c.lua_cpath) .. ";",
    "  lua_shared_dict dynafile_serve 32m;",
    "  init_by_lua_block {",
    "    require(\"dynafile.serve\").init({ " .. table_concat(init, ", ") .. " })",
    "  }",
    "  init_worker_by_lua_block {",
    "    require(\"dynafile.serve\").init_worker()",
    "  }",
    "  server {",
    "    listen " .. c.listen .. " reuseport backlog=4096;",
    "    location / {",
    "      content_by_lua_block {",
    "        require(\"dynafile.serve\").handle()",
    "      }",
    "    }",
    "  }",
    "}",
    "",
  }
  return table_concat(lines, "\n")
end

local function fail(msg) error({ msg = msg }, 0) end

local SYNC = { full = true, normal = true, off = true }

--- Run `dynafile serve`.
-- @tparam table io_ {stdout, stderr}
-- @tparam table opts the parsed options
-- @tparam string dir the data directory
-- @treturn integer exit status
function M.run(io_, opts, dir)
  local port = tonumber(opts.port or "8000")
  if not port or port < 1 or port > 65535 or port ~= math.floor(port) then
    fail("--port must be a number from 1 to 65535")
  end
  local host = opts.host or "127.0.0.1"
  if not string_match(host, "^[%w%.:%-%[%]]+$") then fail("--host must be an address") end
  local workers = opts.workers and tonumber(opts.workers) or cpu_count()
  if not workers or workers < 1 or workers > 1024 or workers ~= math.floor(workers) then
    fail("--workers must be a number from 1 to 1024")
  end
  local sync = opts.sync or "normal"
  if not SYNC[sync] then fail("--sync must be full, normal or off") end
  local region = opts.region or "us-east-1"
  if not string_match(region, "^[%w%-]+$") then fail("--region must be a region name") end
  local auth
  if opts.auth then
    auth = absolute(opts.auth)
    if not file_exists(auth) then fail("--auth: cannot read " .. opts.auth) end
  end

  local nginx, modules = M.find_nginx()
  if not nginx then fail(modules) end
  local ldir = lua_dir()
  if not ldir then fail("cannot tell where dynafile's Lua files are") end
  local cdir = M.find_luajit_module(ldir)
  if not cdir then
    fail("the dynafile module built for LuaJIT (nginx's Lua) was not found: build it with "
      .. "`make LUA=luajit` (or set DYNAFILE_LUAJIT_CPATH to the directory holding "
        .. "dynafile/core.so)")
  end

  dir = absolute(dir)
  -- a server that is stopping may hold the directory for a moment
  local holder = running_master(dir)
  for _ = 1, 50 do
    if not holder then break end
    os_execute("sleep 0.1")
    holder = running_master(dir)
  end
  if holder then
    fail(string_format("another dynafile serve is using %s (its nginx master: pid %d)", dir,
      holder))
  end
  local run = dir .. "/@serve/run"
  local existed = file_exists(dir .. "/.")
  if not mkdir_p { dir, run .. "/conf", run .. "/run", run .. "/tmp" } then
    fail("cannot create " .. run)
  end
  local user
  if proc_self("status", "^Uid:%s+(%d+)") == "0" then
    -- workers run as the data directory's owner (nginx would pick nobody):
    -- root's when this run made it
    user = existed and read_command("stat -c '%U %G' " .. shell_quote(dir)) or "root root"
  end
  local listen = string_match(host, ":") and not string_match(host, "^%[")
    and ("[" .. host .. "]:" .. port) or (host .. ":" .. port)
  -- connections per worker: as many as the descriptor limit allows
  local nofile = tonumber(proc_self("limits", "^Max open files%s+(%d+)") or "") or 1024
  local connections = math.max(64, math.min(8192, nofile - 64))
  local text = M.config_text {
    connections = connections,
    modules = modules,
    workers = workers,
    user = user,
    listen = listen,
    lua_path = ldir .. "/?.lua;" .. ldir .. "/?/init.lua;;",
    lua_cpath = cdir .. "/?.so;;",
    serve = {
      dir = dir, sync = sync, region = region, auth_file = auth,
      parent_pid = my_pid(), host = host, port = port, workers = workers,
    },
  }
  local conf = run .. "/conf/nginx.conf"
  local f = io_open(conf, "w")
  if not f then fail("cannot write " .. conf) end
  f:write(text)
  f:close()
  os_remove(run .. "/run/nginx.pid")
  io_.stderr:write(string_format("dynafile serve: http://%s for the tables in %s "
    .. "(%d worker%s, sync %s); Ctrl-C stops it\n", listen, dir, workers,
    workers == 1 and "" or "s", sync))
  io_.stderr:flush()
  local cmd = string_format("exec %s -p %s -c %s -e stderr", shell_quote(nginx),
    shell_quote(run .. "/"), shell_quote(conf))
  local ok, how, code = os_execute(cmd)
  if ok == true or ok == 0 then return 0 end
  if how == "signal" then
    -- stopped by Ctrl-C (SIGINT) or SIGTERM: a normal end
    if code == 2 or code == 15 then return 0 end
    return 128 + (code or 0)
  end
  if type(ok) == "number" then return ok > 255 and math.floor(ok / 256) or ok end
  return code or 1
end

return M
