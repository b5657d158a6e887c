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
-- Invariant: every error the Lua layer raises goes through `raise`.
-- @module dynafile.errors
-- @local

local error, type, pairs, tostring = error, type, pairs, tostring
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

return M
