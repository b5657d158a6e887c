#!/usr/bin/env bash
# serve.sh -- `dynafile serve` through real clients (run by make test).
#
# Runs every tests/js/*.test.js with node's built-in test runner: the AWS
# SDK for JavaScript v3 against `dynafile serve` (each file starts its own
# server on a free 127.0.0.1 port, with a temporary data directory), and
# the differential tests against dynalite; tests/serve/group_test.lua (group
# commit under a model of nginx's loop, LuaJIT).  Then tests/serve/cli.sh drives
# the AWS CLI (Debian's awscli).  Needs `make js-deps` (tests/js/node_modules)
# and the module built for LuaJIT (nginx's Lua) and Lua 5.4 -- built here.
# The last line printed is "N passed, N failed", counting every test.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
MAKE=${MAKE:-make}
PASS=0
FAIL=0
bad() { FAIL=$((FAIL + 1)); echo "FAIL $1${2:+: $2}"; }
finish() { echo "$PASS passed, $FAIL failed"; [ "$FAIL" -eq 0 ]; exit; }

for cmd in node nginx lua5.4 luajit; do
  command -v "$cmd" >/dev/null 2>&1 || { bad "prerequisite: $cmd" "not installed"; finish; }
done
if ! sh scripts/js-deps.sh --check >/dev/null 2>&1; then
  bad "prerequisite: tests/js/node_modules" "run make js-deps"
  finish
fi
for lua in luajit lua5.4; do
  if ! $MAKE --no-print-directory -s LUA=$lua all >/tmp/dynafile-serve-build.$$ 2>&1; then
    cat /tmp/dynafile-serve-build.$$
    rm -f /tmp/dynafile-serve-build.$$
    bad "build: the module for $lua"
    finish
  fi
done
rm -f /tmp/dynafile-serve-build.$$

# node --test prints TAP; its closing "# pass N" / "# fail N" are the counts
log=$(mktemp)
( cd tests/js && timeout 1500 node --test --test-reporter=tap ./*.test.js ) >"$log" 2>&1
rc=$?
cat "$log"
p=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$log" | tail -n 1)
f=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$log" | tail -n 1)
c=$(sed -n 's/^# cancelled \([0-9]*\)$/\1/p' "$log" | tail -n 1)
rm -f "$log"
if [ -z "$p" ] || [ -z "$f" ]; then
  bad "node --test tests/js" "no summary (exit $rc)"
else
  PASS=$((PASS + p))
  FAIL=$((FAIL + f + ${c:-0}))
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && [ "${c:-0}" -eq 0 ]; then
    bad "node --test tests/js" "exit $rc with no failed test"
  fi
fi

# group commit (lua/dynafile/serve/group.lua) under a model of nginx's loop
log=$(mktemp)
LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;" LUA_CPATH="$ROOT/build/luajit/?.so;;" \
  timeout 60 luajit tests/serve/group_test.lua >"$log" 2>&1
cat "$log"
counts=$(sed -n -E 's/^([0-9]+) passed, ([0-9]+) failed$/\1 \2/p' "$log" | tail -n 1)
rm -f "$log"
if [ -z "$counts" ]; then
  bad "tests/serve/group_test.lua" "no summary"
else
  set -- $counts
  PASS=$((PASS + $1))
  FAIL=$((FAIL + $2))
fi

if [ -f tests/serve/cli.sh ]; then
  log=$(mktemp)
  timeout 600 bash tests/serve/cli.sh >"$log" 2>&1
  rc=$?
  cat "$log"
  counts=$(sed -n -E 's/^([0-9]+) passed, ([0-9]+) failed$/\1 \2/p' "$log" | tail -n 1)
  rm -f "$log"
  if [ -z "$counts" ]; then
    bad "tests/serve/cli.sh" "no summary (exit $rc)"
  else
    set -- $counts
    PASS=$((PASS + $1))
    FAIL=$((FAIL + $2))
  fi
fi
finish
