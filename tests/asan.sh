#!/usr/bin/env bash
# asan.sh -- the C core and the Lua module under AddressSanitizer and
# UndefinedBehaviorSanitizer (`make asan`; make test runs it too).
#
# Builds build/asan (gcc, -fsanitize=address,undefined, UB fatal), then
# runs every C test and C example, and the whole busted suite on Lua 5.4
# with the ASan runtime preloaded into the (uninstrumented) interpreter.
# LeakSanitizer checks every process at exit; tests/lsan.supp silences only
# LMDB's command-line tools, which specs start.  Any sanitizer report is a
# failure.  The last line is "N passed, N failed": one per C program, plus
# busted's successes and failures.
set -u
ROOT=${DYNAFILE_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$ROOT" || exit 1
MAKE=${MAKE:-make}
# (not build/asan: specs derive a child interpreter's name from the
# build directory, build/<lua>/, and fall back to lua5.4)
B=build/lua5.4-asan
SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
LOG=$(mktemp -d "${TMPDIR:-/tmp}/dynafile-asan.XXXXXX") || exit 1
trap 'rm -rf "$LOG"' EXIT

pass=0
fail=0

if ! $MAKE --no-print-directory -j"$(nproc 2>/dev/null || echo 2)" LUA=lua5.4 B=$B \
     EXTRA_CFLAGS="$SAN" LDFLAGS="$SAN" all test-c >"$LOG/build" 2>&1; then
  tail -n 30 "$LOG/build"
  echo "the sanitizer build failed"
  echo "0 passed, 1 failed"
  exit 1
fi

ASAN_SO=$(${CC:-gcc} -print-file-name=libasan.so)
case "$ASAN_SO" in
  /*) ;;
  *) echo "no libasan.so next to ${CC:-gcc}"; echo "0 passed, 1 failed"; exit 1 ;;
esac
# Every process the specs start (sh, cp, mdb_dump, child interpreters)
# inherits the preloaded runtime.  Reports go to one file per process
# under $LOG/san; a leak at exit fails no process (exitcode=0), the files
# are judged below: every memory error counts, and a leak counts when
# dynafile's code (src/, the module) is on its allocation stack -- system
# tools that do not free before exit (cp, mdb_dump, ...) do not.
mkdir -p "$LOG/san"
export ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:log_path=$LOG/san/report
export LSAN_OPTIONS=suppressions=$ROOT/tests/lsan.supp:print_suppressions=0:exitcode=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$LOG/san/report

# Programs that hang with the ASan runtime preloaded (procps' ps waits
# forever on a lock during its start-up), or that are not dynafile's and
# leak by design at exit (node, the dynalite server of spec/remote_spec.lua:
# v8's heap), are run through a wrapper, first on PATH, that starts them
# without it.
mkdir -p "$LOG/bin"
for tool in ps node; do
  real=$(command -v "$tool") || continue
  printf '#!/bin/sh\nunset LD_PRELOAD\nexec %s "$@"\n' "$real" >"$LOG/bin/$tool"
  chmod +x "$LOG/bin/$tool"
done
export PATH="$LOG/bin:$PATH"

# Print the reports that count, and clear the report directory.
sanitizer_report() {
  for r in "$LOG"/san/report.*; do
    [ -f "$r" ] || continue
    if grep -qE "ERROR: AddressSanitizer|runtime error:" "$r" ||
       grep -qE "src/[a-z_]+\.c|dynafile" "$r"; then
      cat "$r"
    fi
    rm -f "$r"
  done
  cat "$1" 2>/dev/null | grep -E -A 30 "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:"
}

# ---------------------------------------------------------------- C
for bin in $B/tests/test_* $B/examples/*; do
  [ -x "$bin" ] || continue
  "$bin" </dev/null >"$LOG/c" 2>&1
  rc=$?
  report=$(sanitizer_report "$LOG/c" | head -n 80)
  if [ "$rc" -eq 0 ] && [ -z "$report" ]; then
    pass=$((pass + 1))
    echo "ok    $bin: $(tail -n 1 "$LOG/c")"
  else
    fail=$((fail + 1))
    echo "FAIL  $bin (exit $rc)"
    tail -n 40 "$LOG/c"
    echo "$report"
  fi
done

# ------------------------------------------------------------ busted
cat >"$LOG/busted.lua" <<CONF
return { default = { lpath = "./lua/?.lua;./lua/?/init.lua", cpath = "./$B/?.so",
                     pattern = "_spec", ROOT = { "spec" } } }
CONF
LD_PRELOAD=$ASAN_SO lua5.4 /usr/bin/busted -f "$LOG/busted.lua" -o plainTerminal \
  </dev/null >"$LOG/busted" 2>&1
rc=$?
counts=$(sed -n -E 's/^([0-9]+) success(es)? \/ ([0-9]+) failures? \/ ([0-9]+) errors?.*/\1 \3 \4/p' \
         "$LOG/busted" | tail -n 1)
report=$(sanitizer_report "$LOG/busted" | head -n 120)
if [ -z "$counts" ]; then
  tail -n 60 "$LOG/busted"
  echo "busted under ASan printed no summary (exit $rc)"
  fail=$((fail + 1))
else
  set -- $counts
  grep -E "^(Failure|Error) ->" -A 6 "$LOG/busted" | head -n 80
  echo "busted under ASan: $1 successes, $2 failures, $3 errors"
  pass=$((pass + $1))
  fail=$((fail + $2 + $3))
  if [ -n "$report" ] || { [ "$rc" -ne 0 ] && [ $(($2 + $3)) -eq 0 ]; }; then
    echo "sanitizer report (exit $rc):"
    echo "$report"
    fail=$((fail + 1))
  fi
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
