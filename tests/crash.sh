#!/usr/bin/env bash
# crash.sh -- the crash loop in CI: 200 SIGKILLs of 1 to 3 writer
# processes at once, in each sync mode in turn ("full", "normal", "off"),
# each followed by a full check (tests/crash/driver.lua).  `make crash`
# (or `make crashtest`) runs the long version (1,000 kills).
#
# First the checker is checked: with CRASH_TAMPER=1 the driver damages the
# database itself after each kill, and every one of those cycles must be
# reported.  The last line is "N passed, N failed": one per kill, plus one
# for the checker's own check.
#
# Environment: CRASH_KILLS (default 200), CRASH_SEED (default: the time),
# DYNAFILE_ROOT (repository root), LUA_PATH/LUA_CPATH as set by make test.
set -u
ROOT=${DYNAFILE_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$ROOT" || exit 1
export LUA_PATH=${LUA_PATH:-"$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;"}
export LUA_CPATH=${LUA_CPATH:-"$ROOT/build/lua5.4/?.so;;"}
KILLS=${CRASH_KILLS:-200}
SEED=${CRASH_SEED:-$(date +%s)}

self_pass=0
self_fail=0
out=$(CRASH_TAMPER=1 lua5.4 tests/crash/driver.lua 5 "$SEED" 2>/dev/null)
if echo "$out" | grep -q '^0 passed, 5 failed$'; then
  echo "checker check: 5 of 5 tampered databases reported"
  self_pass=1
else
  echo "checker check FAILED: tampering went unnoticed:"
  echo "$out"
  self_fail=1
fi

out=$(lua5.4 tests/crash/driver.lua "$KILLS" "$SEED")
rc=$?
echo "$out" | sed '$d'
counts=$(echo "$out" | sed -n -E 's/^([0-9]+) passed, ([0-9]+) failed$/\1 \2/p' | tail -n 1)
if [ -z "$counts" ]; then
  echo "crash loop did not finish (exit $rc)"
  set -- 0 1
else
  set -- $counts
fi
echo "$(( $1 + self_pass )) passed, $(( $2 + self_fail )) failed"
