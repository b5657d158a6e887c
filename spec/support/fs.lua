-- spec/support/fs.lua: helpers shared by the core specs (loaded with
-- dofile, never run by busted itself): fresh temporary directories, a
-- canonical dump of a database for before/after comparisons, and running
-- a Lua chunk in a separate process (also as an unprivileged user).
local M = {}

local function sh_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.quote = sh_quote

local made = {}

--- A fresh, empty, world-traversable directory under /tmp (os.tmpname's
-- directory); removed by M.cleanup().
function M.tmpdir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute("mkdir -p " .. sh_quote(p) .. " && chmod 0755 " .. sh_quote(p)))
  made[#made + 1] = p
  return p
end

--- Remove every directory made by tmpdir().
function M.cleanup()
  for _, p in ipairs(made) do
    os.execute("chmod -R u+rwx " .. sh_quote(p) .. " 2>/dev/null; rm -rf " .. sh_quote(p))
  end
  made = {}
end

function M.exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

function M.slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

-- A canonical text form of a Lua value: tables with sorted keys, numbers
-- with their subtype on Lua 5.3+.
local function dump(v, out)
  local t = type(v)
  if t == "table" then
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b)
      local ta, tb = type(a), type(b)
      if ta ~= tb then return ta < tb end
      return a < b
    end)
    out[#out + 1] = "{"
    for _, k in ipairs(keys) do
      dump(k, out)
      out[#out + 1] = "="
      dump(v[k], out)
      out[#out + 1] = ","
    end
    out[#out + 1] = "}"
  elseif t == "number" then
    out[#out + 1] = (math.type and math.type(v) or "n") .. string.format("%.17g", v)
  elseif t == "string" then
    out[#out + 1] = string.format("%q", v)
  else
    out[#out + 1] = tostring(v)
  end
end

function M.dump(v)
  local out = {}
  dump(v, out)
  return table.concat(out)
end

--- Every item of the database, in scan order, as one string.
function M.snapshot(db)
  local parts = {}
  for item in db:scan() do parts[#parts + 1] = M.dump(item) end
  return table.concat(parts, "\n")
end

-- The repository root (the specs run from it) and the build in use.
local function module_paths()
  local cpath = package.cpath:match("([^;]*build/[^;]*%?%.so)") or "./build/lua5.4/?.so"
  return "./lua/?.lua;./lua/?/init.lua", cpath
end

--- The interpreter running the specs (for child processes): the first
-- of lua5.4, lua5.3, lua5.1, luajit matching _VERSION / jit.
function M.interpreter()
  if rawget(_G, "jit") then return "luajit" end
  local v = _VERSION:match("(%d+%.%d+)")
  return "lua" .. v
end

--- Run `code` (a Lua chunk) in a new process with the dynafile module
-- paths set; returns exit status and output (stdout and stderr).
-- opts.as_user: run as that user (through setpriv) when this process is
-- root; opts.module_dir: a directory holding a copy of the module (for a
-- user who cannot read the source tree).
function M.run_lua(code, opts)
  opts = opts or {}
  local script = os.tmpname()
  local f = assert(io.open(script, "wb"))
  f:write(code)
  f:close()
  local lpath, cpath = module_paths()
  if opts.module_dir then
    lpath = opts.module_dir .. "/?.lua;" .. opts.module_dir .. "/?/init.lua"
    cpath = opts.module_dir .. "/?.so"
  end
  local prefix = ""
  if opts.as_user and M.is_root() then
    local u = sh_quote(opts.as_user)
    prefix = "setpriv --reuid=$(id -u " .. u .. ") --regid=$(id -g " .. u .. ")" ..
             " --clear-groups "
    os.execute("chmod 0644 " .. sh_quote(script))
  end
  local out = os.tmpname()
  local cmd = string.format('%senv LUA_PATH=%s LUA_CPATH=%s %s %s >%s 2>&1 </dev/null',
    prefix, sh_quote(lpath .. ";;"), sh_quote(cpath .. ";;"), M.interpreter(),
    sh_quote(script), sh_quote(out))
  local r1, _, r3 = os.execute(cmd)
  local status
  if type(r1) == "number" then status = r1 / 256 -- Lua 5.1: the raw wait status
  else status = r3 end
  local output = M.slurp(out)
  os.remove(out)
  os.remove(script)
  return status, output
end

function M.is_root()
  local p = io.popen("id -u")
  local uid = p:read("*l")
  p:close()
  return uid == "0"
end

--- Copy the Lua layer and the built binding into dir (readable by all),
-- for a process of another user.
function M.copy_module(dir)
  local _, cpath = module_paths()
  local so = cpath:gsub("%?", "dynafile/core")
  assert(os.execute(string.format(
    "mkdir -p %s/dynafile && cp lua/dynafile/*.lua %s/dynafile/ && " ..
    "cp %s %s/dynafile/core.so && chmod -R a+rX %s",
    sh_quote(dir), sh_quote(dir), sh_quote(so), sh_quote(dir), sh_quote(dir))))
  return dir
end

return M
