-- spec/support/procs.lua: run Lua chunks as background processes for the
-- multi-process specs (loaded with dofile, never run by busted itself).
-- Each worker runs the interpreter that runs the specs, with the same
-- module paths, in a process group of its own (so a SIGKILL reaches
-- everything it started); its output and exit status go to files.
local fs = dofile("spec/support/fs.lua")

local M = {}
local q = fs.quote

local function module_paths()
  local cpath = package.cpath:match("([^;]*build/[^;]*%?%.so)") or "./build/lua5.4/?.so"
  return "./lua/?.lua;./lua/?/init.lua", cpath
end

local function sleep(s)
  os.execute("sleep " .. s)
end
M.sleep = sleep

-- os.execute succeeded (Lua 5.1 returns the status, later true/nil).
local function succeeded(cmd)
  local r = os.execute(cmd)
  return r == true or r == 0
end

--- Start `code` with arguments `args` (a list of strings, seen as `arg`
-- and `...`).  Returns a worker {pid =, out =, rc =}.
function M.start(code, args)
  local script = os.tmpname()
  local f = assert(io.open(script, "wb"))
  f:write(code)
  f:close()
  local lpath, cpath = module_paths()
  local quoted = {}
  for i, a in ipairs(args or {}) do quoted[i] = q(a) end
  local out, rc = os.tmpname(), os.tmpname()
  os.remove(rc)
  local cmd = string.format(
    "env LUA_PATH=%s LUA_CPATH=%s %s %s %s >%s 2>&1 </dev/null; echo $? >%s.tmp; mv %s.tmp %s",
    q(lpath .. ";;"), q(cpath .. ";;"), fs.interpreter(), q(script),
    table.concat(quoted, " "), q(out), q(rc), q(rc), q(rc))
  local p = assert(io.popen("setsid sh -c " .. q(cmd) .. " >/dev/null 2>&1 & echo $!"))
  local pid = tonumber(p:read("*l"))
  p:close()
  return { pid = pid, out = out, rc = rc, script = script }
end

--- The lines the worker printed so far.
function M.output(w)
  local f = io.open(w.out, "rb")
  if not f then return "" end
  local s = f:read("*a")
  f:close()
  return s
end

--- Wait until the worker printed a line matching `pattern` (or ended);
-- true when it did, within `seconds`.
function M.wait_for(w, pattern, seconds)
  local deadline = os.time() + (seconds or 60)
  repeat
    if M.output(w):find(pattern) then return true end
    if fs.exists(w.rc) then return M.output(w):find(pattern) ~= nil end
    sleep(0.05)
  until os.time() > deadline
  return false
end

--- Wait for the worker to exit (at most `seconds`, then it is killed).
-- Returns its exit status and output.
function M.wait(w, seconds)
  local deadline = os.time() + (seconds or 120)
  while not fs.exists(w.rc) do
    if os.time() > deadline then
      M.kill(w)
      break
    end
    sleep(0.05)
  end
  local status = tonumber(fs.exists(w.rc) and fs.slurp(w.rc):match("%d+") or "") or -1
  return status, M.output(w)
end

-- A shell test, with builtins only (no ps: the specs may run with a
-- sanitizer runtime preloaded, which some tools do not survive): does a
-- process of group $1 still run (is it in /proc and not a zombie)?
local GROUP_RUNS = [[
for s in /proc/[0-9]*/stat; do
  read -r line 2>/dev/null < "$s" || continue
  set -- $line
  [ "$5" = "$G" ] && [ "$3" != Z ] && exit 0
done
exit 1]]

--- Send SIGKILL to the worker's process group and wait until none of
-- its processes runs any more (the shell recording the status dies too).
function M.kill(w)
  os.execute("kill -9 -" .. w.pid .. " 2>/dev/null")
  for _ = 1, 250 do
    if not succeeded("G=" .. w.pid .. " sh -c " .. q(GROUP_RUNS)) then break end
    sleep(0.02)
  end
end

--- Remove the worker's files.
function M.cleanup(w)
  os.remove(w.out)
  os.remove(w.rc)
  os.remove(w.script)
end

return M
