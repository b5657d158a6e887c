#!/usr/bin/env bash
# readme_tour.sh -- the README's five-minute tour is a program that works.
#
# Joins the ```lua blocks of the "## A five-minute tour" section of
# README.md into one program, runs it with Lua 5.4 (build/lua5.4) in a
# scratch directory, and checks its output line by line against the
# `--> expected` comments, in order (runs of blanks count as one blank).
# The last line is "N passed, N failed".
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
if [ ! -f build/lua5.4/dynafile/core.so ]; then
  ${MAKE:-make} --no-print-directory -s LUA=lua5.4 all >/dev/null 2>&1 || {
    echo "FAIL build: make LUA=lua5.4 failed"
    echo "0 passed, 1 failed"
    exit 1
  }
fi
W=$(mktemp -d "${TMPDIR:-/tmp}/dynafile-tour.XXXXXX") || exit 1
trap 'rm -rf "$W"' EXIT

lua5.4 - "$ROOT" "$W" <<'LUA'
local root, work = arg[1], arg[2]
local f = assert(io.open(root .. "/README.md"))
local readme = f:read("a")
f:close()

local passed, failed = 0, 0
local function check(ok, what, why)
  if ok then
    passed = passed + 1
  else
    failed = failed + 1
    print("FAIL " .. what .. (why and (": " .. why) or ""))
  end
end

local section = readme:match("\n## A five%-minute tour\n(.-)\n## ") or
                readme:match("\n## A five%-minute tour\n(.*)$")
local code, expected = {}, {}
if section then
  for block in section:gmatch("```lua\n(.-)```") do
    code[#code + 1] = block
    for line in block:gmatch("[^\n]*") do
      local want = line:match("%-%->%s*(.-)%s*$")
      if want then expected[#expected + 1] = want end
    end
  end
end
check(#code > 0 and #expected > 0, "README.md has a tour with ```lua blocks and --> lines")

local prog = work .. "/tour.lua"
f = assert(io.open(prog, "w"))
f:write(table.concat(code, "\n"))
f:close()
local cmd = string.format(
  "cd '%s' && LUA_PATH='%s/lua/?.lua;%s/lua/?/init.lua;;' LUA_CPATH='%s/build/lua5.4/?.so;;' " ..
  "lua5.4 tour.lua 2>&1", work, root, root, root)
local p = assert(io.popen(cmd))
local out = {}
for line in p:lines() do out[#out + 1] = line end
local ok, how, status = p:close()
check(ok, "the tour runs and exits 0", not ok and (how .. " " .. tostring(status) .. ":\n" ..
      table.concat(out, "\n")) or nil)

local function norm(s) return (s:gsub("%s+", " "):gsub("^ ", ""):gsub(" $", "")) end
for i, want in ipairs(expected) do
  local got = out[i] and norm(out[i])
  check(got == norm(want), string.format("output line %d", i),
        string.format("want [%s], got [%s]", norm(want), tostring(got)))
end
check(#out == #expected, "no output beyond the --> lines",
      #out ~= #expected and string.format("%d lines printed, %d expected", #out, #expected) or nil)
print(string.format("%d passed, %d failed", passed, failed))
os.exit(failed == 0 and 0 or 1)
LUA
