--- dynafile.errors: how the Lua layer reports misuse and failures.
--
-- Misuse -- a wrong argument, an unknown option, an invalid item or key, a
-- closed handle, a write this thread cannot make -- raises an error
-- "dynafile.<function>: <problem>" naming the function the user called,
-- positioned at the user's line (or at none), never at a line inside
-- this library.  Expected failures are returned as `nil, message, code`.
--
-- The binding (dynafile.core) returns every failure, misuse included
-- (marked by a fourth value), with a message that names no function: one
-- binding method serves several public functions.  `failed` turns the
-- misuse into the raise.  The value rules, their messages and which
-- failures are misuse live in C; this module only decides how they reach
-- the user.
--
-- It also gives a batch writer class of either backend the ends it must
-- have when its user does not end it (`writer_class`): a `<close>` scope
-- commits, and a writer collected with writes queued reports their loss.
--
-- Invariant: every error the Lua layer raises goes through `raise`.
-- @module dynafile.errors
-- @local

local error, type, pairs, tostring, pcall, getmetatable =
  error, type, pairs, tostring, pcall, getmetatable
local io = io
local string_format = string.format
local getinfo = debug and debug.getinfo -- luacheck: ignore 143

local M = {}

-- The directory of the library's Lua files: frames whose source lies in
-- it are the library's own.
local LIB_DIR = getinfo and (getinfo(1, "S").source or ""):match("^(@.*[/\\])errors%.lua$")

--- Raise `msg` at the level of the first function on the stack outside
-- the library (however deep inside the library the misuse was found).
-- @tparam string msg the whole message
-- @raise always
function M.raise(msg)
  local level = 3
  if LIB_DIR then
    level = 2
    while true do
      local info = getinfo(level, "S")
      if not info then
        level = 0
        break
      end
      local src = info.source or ""
      if info.what ~= "tail" and src:sub(1, #LIB_DIR) ~= LIB_DIR then break end
      level = level + 1
    end
  end
  error(msg, level)
end
local raise = M.raise

--- Raise "dynafile.<fn>: <formatted message>".
-- @tparam string fn the function the user called ("put_item",
--   "batch_writer.flush", ...)
-- @tparam string fmt a format for string.format
-- @raise always
function M.fail(fn, fmt, ...)
  raise(string_format("dynafile.%s: " .. fmt, fn, ...))
end
local fail = M.fail

--- Hand on a failure the binding returned: raise it when the binding
-- marked it as misuse, naming `fn`; return `nil, msg, code` otherwise.
-- (The binding returns `nil, message, code` for an expected failure and
-- `nil, message, code, true` for misuse: see src/lerror.c.)
-- @tparam string fn the function the user called
-- @tparam string msg the binding's message
-- @tparam string code the binding's code
-- @param misuse the binding's misuse mark
-- @return nil, msg, code
-- @raise when misuse is set
function M.failed(fn, msg, code, misuse)
  if misuse then raise(string_format("dynafile.%s: %s", fn, msg)) end
  return nil, msg, code
end

--- Check an options table: nil gives an empty table, anything but a
-- table or a key not in `allowed` raises.
-- @tparam string fn the function the user called
-- @param opts the options given
-- @tparam table allowed the option names, as keys
-- @tparam[opt] string argname how to name the argument ("options")
-- @treturn table opts, or a new empty table
-- @raise on anything but nil or a table of allowed keys
function M.options(fn, opts, allowed, argname)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    fail(fn, "%s must be a table, got %s", argname or "options", type(opts))
  end
  for k in pairs(opts) do
    if not allowed[k] then
      fail(fn, "unknown option '%s'", tostring(k))
    end
  end
  return opts
end


-- ------------------------------------------------------ batch writers

-- A writer collected with writes still queued lost them: say so on
-- stderr now, and make the next call on its database raise (the
-- handle's check_open), so the loss cannot go unnoticed.  Runs as a
-- finalizer: it never raises.
local function writer_collected(w)
  local n = w._n
  if w._closed or n == 0 then return end
  local msg = string_format("a batch writer of this database was garbage-collected with %d "
    .. "queued write%s, never flushed: %s lost (end every batch writer with w:flush(), "
    .. "w:close() or w:discard())", n, n == 1 and "" or "s", n == 1 and "it was" or "they were")
  local st = w._db._st
  if st then st.lost_writes = msg end
  pcall(function() io.stderr:write("dynafile: ", msg, "\n") end)
end

-- Lua 5.4 `local w <close>`: commit at normal scope exit (raising when
-- the commit fails: a __close handler cannot return it), discard when
-- the scope exits by an error.
local function writer_close(w, err)
  if w._closed then return end
  if err ~= nil then
    w:discard()
    return
  end
  local ok, msg = w:close()
  if not ok then error(msg, 0) end
end

--- How a batch writer of either backend ends when its user does not end
-- it: sets the class's `__close` (commit at the end of a `<close>`
-- scope, discard when it ends by an error, raise when the commit fails)
-- and `__gc` (a writer collected with queued writes reports their loss on
-- stderr and makes the next call on its database raise).
-- @tparam table Writer the class; its writers have `_db`, `_n` (writes
--   queued) and `_closed`, and the methods `close` and `discard`
-- @treturn function `watch(w)`, to call on every new writer: Lua 5.1 and
--   LuaJIT run __gc only for userdata, so there a proxy userdata carries it
-- @raise nothing
function M.writer_class(Writer)
  Writer.__close = writer_close
  -- Lua 5.2+ calls __gc of a table whose metatable has it when set
  Writer.__gc = writer_collected
  local newproxy = _G.newproxy
  return function(w)
    if newproxy then
      local proxy = newproxy(true)
      getmetatable(proxy).__gc = function() writer_collected(w) end
      w._proxy = proxy
    end
    return w
  end
end

return M
