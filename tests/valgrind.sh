#!/usr/bin/env bash
# valgrind.sh -- the whole busted suite on Lua 5.4 under valgrind's
# memcheck (`make valgrind`; make test runs it too).
#
# Uses the ordinary build (build/lua5.4).  Any memcheck error (invalid
# read or write, use of uninitialised memory, a bad free) and any definite
# or indirect leak, whoever allocated it, is a failure: no suppression
# file is needed (Lua and busted free everything at exit).  The last line
# is "N passed, N failed": busted's successes and failures, plus one
# failure when valgrind reported anything.
set -u
ROOT=${DYNAFILE_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$ROOT" || exit 1
MAKE=${MAKE:-make}
LOG=$(mktemp -d "${TMPDIR:-/tmp}/dynafile-valgrind.XXXXXX") || exit 1
trap 'rm -rf "$LOG"' EXIT

if ! $MAKE --no-print-directory LUA=lua5.4 all >"$LOG/build" 2>&1; then
  tail -n 30 "$LOG/build"
  echo "0 passed, 1 failed"
  exit 1
fi
cat >"$LOG/busted.lua" <<CONF
return { default = { lpath = "./lua/?.lua;./lua/?/init.lua", cpath = "./build/lua5.4/?.so",
                     pattern = "_spec", ROOT = { "spec" } } }
CONF
valgrind -q --error-exitcode=99 --leak-check=full \
  --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
  --log-file="$LOG/valgrind.%p" \
  lua5.4 /usr/bin/busted -f "$LOG/busted.lua" -o plainTerminal "$@" \
  </dev/null >"$LOG/busted" 2>&1
rc=$?
pass=0
fail=0
counts=$(sed -n -E 's/^([0-9]+) success(es)? \/ ([0-9]+) failures? \/ ([0-9]+) errors?.*/\1 \3 \4/p' \
         "$LOG/busted" | tail -n 1)
if [ -z "$counts" ]; then
  tail -n 60 "$LOG/busted"
  echo "busted under valgrind printed no summary (exit $rc)"
  fail=1
else
  set -- $counts
  grep -E "^(Failure|Error) ->" -A 6 "$LOG/busted" | head -n 80
  echo "busted under valgrind: $1 successes, $2 failures, $3 errors"
  pass=$1
  fail=$(($2 + $3))
fi
# valgrind's own reports (one log per process valgrind ran)
reports=$(cat "$LOG"/valgrind.* 2>/dev/null)
if [ -n "$reports" ] || [ "$rc" -eq 99 ]; then
  echo "valgrind reported (exit $rc):"
  echo "$reports" | head -n 120
  fail=$((fail + 1))
else
  echo "valgrind: no memory errors, no definite or indirect leaks"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
