#!/usr/bin/env bash
# powerloss.sh -- the power-loss simulator in CI (tests/powerloss/): crash
# images of databases whose writers were cut off as by a power failure,
# each recovered and checked (tests/powerloss/driver.lua says what).
# `make crash` runs the long version (POWERLOSS_IMAGES images per sync
# mode, 100 by default there).
#
# First the simulator is checked: the recorder must account for a write
# cut short by SIGKILL (tests/powerloss/plcut.c), and three deliberately
# broken builds of the
# commit path (-DDF_BROKEN=1: checkpoints pin nothing, so their pages can
# be reused; 2: recovery does not put LMDB's meta pages back; 3:
# checkpoints do not flush the data file) must each be caught -- some
# image found wrong.  The last line is "N passed, N failed": one per image
# of the real build, plus one for the recorder's check and one per broken
# build caught.
#
# Environment: POWERLOSS_IMAGES (images per sync mode, default 24),
# POWERLOSS_SEED (default: the time), DYNAFILE_ROOT, LUA_PATH/LUA_CPATH as
# set by make test.
set -u
ROOT=${DYNAFILE_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$ROOT" || exit 1
export LUA_PATH=${LUA_PATH:-"$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;"}
IMAGES=${POWERLOSS_IMAGES:-24}
SEED=${POWERLOSS_SEED:-$(date +%s)}
PER_ROUND=8
ROUNDS=$(( (IMAGES + PER_ROUND - 1) / PER_ROUND * 3 ))
MAKE=${MAKE:-make}

pass=0
fail=0
if ! $MAKE --no-print-directory powerloss-build >/dev/null 2>&1; then
  echo "the simulator did not build"
  echo "0 passed, 1 failed"
  exit 1
fi

# the recorder accounts for a write cut short by a kill (plcut.c)
cut=$(mktemp -d)
mkdir -p "$cut/db" "$cut/journal" "$cut/images"
: >"$cut/db/data.mdb"
{
  PLSIM_DIR="$cut/db" PLSIM_JOURNAL="$cut/journal" PLSIM_FILES=data.mdb \
    LD_PRELOAD="$ROOT/build/powerloss/plsim.so" \
    build/powerloss/plcut "$cut/db/data.mdb" "$cut/journal"
  cut_status=$?
} 2>/dev/null
live=$(stat -c %s "$cut/db/data.mdb")
if [ "$cut_status" -eq 137 ] &&
   build/powerloss/plimage "$cut/journal" "$cut/db" "$cut/images" 1 2 data.mdb \
     >/dev/null && cmp -s "$cut/db/data.mdb" "$cut/images/img1/data.mdb"; then
  echo "recorder: a write killed midway ($live of $((4096 + (64 << 20))) bytes in the file) is accounted for"
  pass=$((pass + 1))
else
  echo "recorder: a write killed midway ($live bytes in the file, status $cut_status) is NOT accounted for"
  fail=$((fail + 1))
fi
rm -rf "$cut"

# the broken builds must be caught
for v in 1 2 3; do
  b=build/powerloss/broken$v
  if ! $MAKE --no-print-directory -j2 LUA=lua5.4 B=$b EXTRA_CFLAGS=-DDF_BROKEN=$v \
       $b/dynafile/core.so >/dev/null 2>&1; then
    echo "broken build $v did not build"
    fail=$((fail + 1))
    continue
  fi
  out=$(LUA_CPATH="$ROOT/$b/?.so;;" lua5.4 tests/powerloss/driver.lua 12 6 "$SEED" 2>/dev/null |
        tail -n 1)
  caught=$(echo "$out" | sed -n -E 's/^[0-9]+ passed, ([0-9]+) failed$/\1/p')
  if [ -n "$caught" ] && [ "$caught" -gt 0 ]; then
    echo "broken build $v: caught ($out)"
    pass=$((pass + 1))
  else
    echo "broken build $v: NOT caught ($out)"
    fail=$((fail + 1))
  fi
done

export LUA_CPATH=${LUA_CPATH:-"$ROOT/build/lua5.4/?.so;;"}
out=$(lua5.4 tests/powerloss/driver.lua "$ROUNDS" "$PER_ROUND" "$SEED")
echo "$out" | sed '$d'
counts=$(echo "$out" | sed -n -E 's/^([0-9]+) passed, ([0-9]+) failed$/\1 \2/p' | tail -n 1)
if [ -z "$counts" ]; then
  echo "the power-loss driver did not finish"
  set -- 0 1
else
  set -- $counts
fi
echo "$(( $1 + pass )) passed, $(( $2 + fail )) failed"
