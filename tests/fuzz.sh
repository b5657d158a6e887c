#!/usr/bin/env bash
# fuzz.sh -- runs each libFuzzer harness in fuzz/ for FUZZ_TIME seconds
# (default 30; `make fuzz` gives 60) with ASan and UBSan, starting from the
# checked-in seed corpus fuzz/corpus/<name>.  New inputs go to a temporary
# directory, not into the checked-in corpus.  A crash, a leak, a timeout or
# a broken invariant of a harness is a failure; its input is kept as
# build/fuzz/crash-<name>-* to reproduce with build/fuzz/fuzz_<name> FILE.
# The last line is "N passed, N failed", one per harness.
set -u
ROOT=${DYNAFILE_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$ROOT" || exit 1
MAKE=${MAKE:-make}
FUZZ_TIME=${FUZZ_TIME:-30}
FUZZERS="msgpack key expr ddbexpr lcodec"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dynafile-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$WORK"' EXIT

if ! $MAKE --no-print-directory fuzz-build >"$WORK/build" 2>&1; then
  tail -n 30 "$WORK/build"
  echo "the fuzzers did not build (clang and libclang-rt-14-dev are needed)"
  echo "0 passed, $(echo $FUZZERS | wc -w) failed"
  exit 1
fi

pass=0
fail=0
total=0
for f in $FUZZERS; do
  mkdir -p "$WORK/$f" "$WORK/art-$f"
  build/fuzz/fuzz_$f -max_total_time="$FUZZ_TIME" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$WORK/art-$f/" \
    "$WORK/$f" "fuzz/corpus/$f" </dev/null >"$WORK/$f.log" 2>&1
  rc=$?
  execs=$(sed -n -E 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$WORK/$f.log" | tail -n 1)
  cov=$(grep -E "^#[0-9]+.*(DONE|pulse|NEW|REDUCE)" "$WORK/$f.log" | tail -n 1 |
        sed -n -E 's/.*cov: ([0-9]+).*/\1/p')
  artifacts=$(ls "$WORK/art-$f" 2>/dev/null)
  if [ "$rc" -eq 0 ] && [ -z "$artifacts" ] && [ -n "$execs" ]; then
    pass=$((pass + 1))
    total=$((total + execs))
    echo "ok    fuzz_$f: $execs executions in ${FUZZ_TIME}s, coverage ${cov:-?} edges, no crash"
  else
    fail=$((fail + 1))
    echo "FAIL  fuzz_$f (exit $rc)"
    grep -E -A 25 "ERROR|invariant broken|runtime error" "$WORK/$f.log" | head -n 60
    for a in $artifacts; do
      cp "$WORK/art-$f/$a" "build/fuzz/crash-$f-$a" && echo "  input kept: build/fuzz/crash-$f-$a"
    done
  fi
done
echo "fuzzing: $total executions in all"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
