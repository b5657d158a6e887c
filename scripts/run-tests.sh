#!/bin/sh
# run-tests.sh -- build and run every dynafile test suite (`make test`).
#
# Suites, in order:
#   0. make lint (layering, cppcheck, clang-format, luacheck): one test.
#   1. C unit tests tests/test_*.c and C examples examples/*.c (make test-c,
#      built against build/lua5.4); each example is a test that must exit 0.
#   2. Lua examples examples/*.lua under lua5.4 (must exit 0; files that use
#      ngx.* are left to the nginx tests).
#   3. busted on spec/ for lua5.4, lua5.3, lua5.1 and luajit, each against its
#      own build (make LUA=...); *_54_spec.lua run only on 5.4 (see .busted).
#   4. tests/*.sh scripts, each printing its own "N passed, N failed" last line.
#
# A suite that does not build, crashes, times out or prints no summary counts
# as (at least) one failure.  The end of the output is the summary of every
# suite, then -- for each suite that failed -- the names of its failed
# tests and their messages (busted's Failure/Error blocks, the FAIL lines of
# C tests and scripts, the tail of a program's output), so the last screen
# says what failed and why; the last line printed is exactly
# "N passed, N failed".  The exit status is non-zero when anything failed.
#
# Environment knobs:
#   DYNAFILE_TEST_LUAS  Lua builds to run the specs on
#                       (default "lua5.4 lua5.3 lua5.1 luajit")
#   BUSTED              busted executable (default /usr/bin/busted)
#   TEST_TIMEOUT        seconds allowed per C test / example (default 300)
#   SPEC_TIMEOUT        seconds allowed per busted run (default 1200)
#   SCRIPT_TIMEOUT      seconds allowed per tests/*.sh (default 1800)
set -u

cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)

MAKE=${MAKE:-make}
BUSTED=${BUSTED:-/usr/bin/busted}
LUAS=${DYNAFILE_TEST_LUAS:-lua5.4 lua5.3 lua5.1 luajit}
TEST_TIMEOUT=${TEST_TIMEOUT:-300}
SPEC_TIMEOUT=${SPEC_TIMEOUT:-1200}
SCRIPT_TIMEOUT=${SCRIPT_TIMEOUT:-1800}
JOBS=$(nproc 2>/dev/null || echo 2)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dynafile-tests.XXXXXX") || exit 1
trap 'rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM
# Tests that make temporary databases get their own TMPDIR, removed at the end.
mkdir -p "$WORK/tmp"
export TMPDIR="$WORK/tmp"

TOTAL_PASS=0
TOTAL_FAIL=0
SUMMARY="$WORK/summary"
: >"$SUMMARY"
# What failed, suite by suite: test names and messages (see excerpt).
FAILURES="$WORK/failures"
: >"$FAILURES"
# The log of the suite being run, for excerpt when it fails.
SUITE_LOG=""

# excerpt LOG: the lines of LOG that say what failed -- busted's
# "Failure ->"/"Error ->" blocks (test name and message, up to 12 lines
# each), the FAIL lines of C tests and scripts with the lines after them --
# or, when it has none of these, its last 15 lines; at most 60 lines.
excerpt() {
  [ -n "$1" ] && [ -f "$1" ] || return 0
  awk '
    /^(Failure|Error) -> / { inblock = 12 }
    /error:|Error [0-9]+$/ { if (inblock < 2) inblock = 2 }
    /^FAIL[ :]|[[:space:]]FAIL[[:space:]]|^not ok / { inblock = 8 }
    inblock > 0 { print; inblock--; if ($0 ~ /^$/) inblock = 0 }
  ' "$1" | head -n 60 >"$WORK/excerpt"
  if [ -s "$WORK/excerpt" ]; then
    cat "$WORK/excerpt"
  else
    tail -n 15 "$1"
  fi
}

# record NAME PASSED FAILED [NOTE]
record() {
  TOTAL_PASS=$((TOTAL_PASS + $2))
  TOTAL_FAIL=$((TOTAL_FAIL + $3))
  line=$(printf '%-34s %5d passed, %3d failed%s' "$1" "$2" "$3" \
         "${4:+  ($4)}")
  echo "$line" >>"$SUMMARY"
  echo "== $line"
  if [ "$3" -ne 0 ]; then
    {
      echo "---- $1: $3 failed${4:+ ($4)}"
      excerpt "$SUITE_LOG"
      echo
    } >>"$FAILURES"
  fi
  SUITE_LOG=""
}

section() {
  echo
  echo "======== $* ========"
}

# with_timeout SECONDS CMD...: run CMD, killing it after SECONDS.
with_timeout() {
  t=$1
  shift
  if command -v timeout >/dev/null 2>&1; then
    timeout -k 10 "$t" "$@"
  else
    "$@"
  fi
}

# why RC: a short note for a non-zero exit status.
why() {
  case "$1" in
    124) echo "timed out" ;;
    13[0-9] | 1[4-9][0-9]) echo "killed by signal $(($1 - 128))" ;;
    *) echo "exit $1" ;;
  esac
}

# last "[word: ]N passed, N failed[, N skipped]" line of FILE, as "P F",
# or nothing.
parse_counts() {
  sed -n -E 's/^([^ ]+: )?([0-9]+) passed, ([0-9]+) failed(, [0-9]+ skipped)?[[:space:]]*$/\2 \3/p' \
    "$1" | tail -n 1
}

# run_counted NAME TIMEOUT CMD...: a program that prints its own
# "N passed, N failed" last line.
run_counted() {
  name=$1
  t=$2
  shift 2
  log="$WORK/log"
  with_timeout "$t" "$@" >"$log" 2>&1
  rc=$?
  cat "$log"
  SUITE_LOG=$log
  counts=$(parse_counts "$log")
  if [ -z "$counts" ]; then
    record "$name" 0 1 "no summary line, $(why $rc)"
    return
  fi
  set -- $counts
  if [ "$rc" -ne 0 ] && [ "$2" -eq 0 ]; then
    record "$name" "$1" 1 "$(why $rc) with no failed check"
  elif [ "$rc" -eq 0 ] && [ "$2" -ne 0 ]; then
    record "$name" "$1" "$2" "but exited 0"
  else
    record "$name" "$1" "$2"
  fi
}

# run_plain NAME TIMEOUT CMD...: a program that passes by exiting 0.
run_plain() {
  name=$1
  t=$2
  shift 2
  log="$WORK/log"
  with_timeout "$t" "$@" </dev/null >"$log" 2>&1
  rc=$?
  cat "$log"
  SUITE_LOG=$log
  if [ "$rc" -eq 0 ]; then
    record "$name" 1 0
  else
    record "$name" 0 1 "$(why $rc)"
  fi
}

# build LUA TARGET...: returns non-zero when the build failed.
build() {
  blua=$1
  shift
  $MAKE --no-print-directory -j"$JOBS" -k LUA="$blua" "$@" </dev/null \
    >"$WORK/build.log" 2>&1
  brc=$?
  cat "$WORK/build.log"
  return $brc
}

# up_to_date LUA TARGET: the target was built by the last build.
up_to_date() {
  $MAKE --no-print-directory -q LUA="$1" "$2" >/dev/null 2>&1
}

# ------------------------------------------------------------------- lint
# make lint: the C layering (scripts/depgraph.lua), cppcheck, clang-format
# and luacheck, counted as one test.
section "lint (make lint)"
run_plain "lint: make lint" "$TEST_TIMEOUT" $MAKE --no-print-directory lint

# ---------------------------------------------------------------- C tests
section "C tests and examples (build/lua5.4)"
B=build/lua5.4
build lua5.4 test-c
for src in tests/test_*.c examples/*.c; do
  [ -f "$src" ] || continue
  base=${src%.c}
  bin="$B/$base"
  if ! up_to_date lua5.4 "$bin" || [ ! -x "$bin" ]; then
    SUITE_LOG="$WORK/build.log"
    record "c: $base" 0 1 "did not build"
    continue
  fi
  echo "---- $bin"
  case "$src" in
    tests/*) run_counted "c: $base" "$TEST_TIMEOUT" "$bin" </dev/null ;;
    *) run_plain "c: $base" "$TEST_TIMEOUT" "$bin" ;;
  esac
done

# ---------------------------------------------------------- module builds
# Builds the module for every Lua in $LUAS up front; BUILT lists those
# that built.
BUILT=""
for lua in $LUAS; do
  section "build $lua"
  if build "$lua" all; then
    BUILT="$BUILT $lua "
  else
    SUITE_LOG="$WORK/build.log"
    record "build: $lua" 0 1 "module did not build"
  fi
done

is_built() {
  case "$BUILT" in *" $1 "*) return 0 ;; esac
  return 1
}

# ------------------------------------------------------------ Lua examples
set -- examples/*.lua
if [ -f "$1" ]; then
  section "Lua examples (lua5.4)"
  for ex in examples/*.lua; do
    if grep -q 'ngx\.' "$ex"; then
      echo "---- $ex: uses ngx.*, left to the nginx tests"
      continue
    fi
    if ! is_built lua5.4; then
      record "example: $ex" 0 1 "lua5.4 module did not build"
      continue
    fi
    echo "---- $ex"
    run_plain "example: $ex" "$TEST_TIMEOUT" env \
      LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/lua5.4/?.so;;" \
      lua5.4 "$ex"
  done
fi

# ------------------------------------------------------------------ specs
# busted's closing summary "N successes / N failures / N errors / N pending"
# is parsed; errors (a spec file that does not load, an error outside an
# `it`) count as failures, pending tests are reported but not counted.
run_busted() {
  lua=$1
  name="spec: $lua"
  if ! is_built "$lua"; then
    # already counted as a failure by "build: $lua"
    echo "== $name: skipped, the module did not build"
    return
  fi
  # busted reports an error when no file matches: no specs is not a failure.
  if [ "$lua" = lua5.4 ]; then
    nspecs=$(find spec -name '*_spec.lua' 2>/dev/null | wc -l)
  else
    nspecs=$(find spec -name '*_spec.lua' ! -name '*_54_spec.lua' \
               2>/dev/null | wc -l)
  fi
  if [ "$nspecs" -eq 0 ]; then
    record "$name" 0 0 "no spec files"
    return
  fi
  section "busted on spec/ with $lua"
  log="$WORK/busted-$lua.log"
  # Each run selects its build and file pattern from .busted (-r).
  with_timeout "$SPEC_TIMEOUT" "$BUSTED" --lua="$lua" -r "$lua" \
    -o plainTerminal </dev/null >"$log" 2>&1
  rc=$?
  cat "$log"
  SUITE_LOG=$log
  counts=$(sed -n -E 's/^([0-9]+) success(es)? \/ ([0-9]+) failures? \/ ([0-9]+) errors? \/ ([0-9]+) pending.*/\1 \3 \4 \5/p' \
           "$log" | tail -n 1)
  if [ -z "$counts" ]; then
    record "$name" 0 1 "no busted summary, $(why $rc)"
    return
  fi
  set -- $counts
  failed=$(($2 + $3))
  note=""
  [ "$4" -ne 0 ] && note="$4 pending"
  if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
    failed=1
    note="$(why $rc) with no failed test${note:+, $note}"
  fi
  record "$name" "$1" "$failed" "$note"
}

if ! [ -x "$BUSTED" ]; then
  record "spec: busted" 0 1 "$BUSTED not found (run make deps)"
else
  for lua in $LUAS; do
    run_busted "$lua"
  done
fi

# ---------------------------------------------------------- test scripts
set -- tests/*.sh
if [ -f "$1" ]; then
  for script in tests/*.sh; do
    section "$script"
    run_counted "script: $script" "$SCRIPT_TIMEOUT" env \
      LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;" \
      LUA_CPATH="$ROOT/build/lua5.4/?.so;;" \
      DYNAFILE_ROOT="$ROOT" DYNAFILE_BUILD="$ROOT/build/lua5.4" \
      bash "$script" </dev/null
  done
fi

# ---------------------------------------------------------------- summary
section "summary"
cat "$SUMMARY"
echo
if [ -s "$FAILURES" ]; then
  section "what failed"
  cat "$FAILURES"
fi
echo "$TOTAL_PASS passed, $TOTAL_FAIL failed"
[ "$TOTAL_FAIL" -eq 0 ]
