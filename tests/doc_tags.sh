#!/usr/bin/env bash
# doc_tags.sh -- every public Lua function carries a complete LDoc comment.
#
# The files are the ones config.ld hands to LDoc (`make docs`).  A public
# function is `function M.name(...)` or `function Obj:name(...)` whose name
# does not start with an underscore.  Its comment block must open with
# `---` and hold an @param/@tparam for every parameter, an @return/@treturn
# and an @raise.  One check per function; the last line is
# "N passed, N failed".
set -u
cd "$(dirname "$0")/.." || exit 1

lua5.4 - <<'LUA'
local cfg = {}
local chunk = assert(loadfile("config.ld", "t", cfg))
chunk()
local files = cfg.file
if type(files) == "string" then files = { files } end

local passed, failed = 0, 0
local function check(ok, what, why)
  if ok then
    passed = passed + 1
  else
    failed = failed + 1
    print("FAIL " .. what .. ": " .. why)
  end
end

for _, path in ipairs(files) do
  local lines = {}
  for l in io.lines(path) do lines[#lines + 1] = l end
  for i, l in ipairs(lines) do
    local obj, name, args = l:match("^%s*function%s+([%w_]+)[.:]([%w_]+)%s*%((.-)%)")
    if obj and not name:match("^_") then
      local what = string.format("%s:%d %s.%s", path, i, obj, name)
      local block, j = {}, i - 1
      while j >= 1 and lines[j]:match("^%s*%-%-") do
        table.insert(block, 1, lines[j])
        j = j - 1
      end
      local text = table.concat(block, "\n")
      local problems = {}
      if not (block[1] and block[1]:match("^%s*%-%-%-[^%-]")) then
        problems[#problems + 1] = "no LDoc comment (--- ...)"
      end
      local documented = {}
      for _, b in ipairs(block) do
        local tag, rest = b:match("@(t?param)(.*)")
        if tag then
          rest = rest:gsub("^%[[^%]]*%]", "")
          local name
          if tag == "tparam" then
            name = rest:match("^%s+%S+%s+([%w_]+)")
          else
            name = rest:match("^%s+([%w_]+)")
          end
          if name then documented[name] = true end
        end
      end
      for arg in args:gmatch("[%w_]+") do
        if not documented[arg] then
          problems[#problems + 1] = "no @param for " .. arg
        end
      end
      if not text:match("@t?return") then problems[#problems + 1] = "no @return" end
      if not text:match("@raise") then problems[#problems + 1] = "no @raise" end
      check(#problems == 0, what, table.concat(problems, ", "))
    end
  end
end
if passed + failed == 0 then check(false, "config.ld", "no public function found") end
print(string.format("%d passed, %d failed", passed, failed))
os.exit(failed == 0 and 0 or 1)
LUA
