#!/usr/bin/env bash
# diskfull.sh -- a full disk under a database (tests/diskfull/fill.lua).
#
# Two ways to fill the disk, both real write failures from the kernel:
#  - a 2 MB tmpfs mounted for the test (needs root with CAP_SYS_ADMIN, as
#    in CI's containers here): writes fail with ENOSPC;
#  - a file-size limit (ulimit -f, SIGXFSZ ignored): writes past 2 MB fail
#    with EFBIG.  This needs no privilege, so it always runs: when the
#    mount is impossible it is the test, never a skip.
# The last line is "N passed, N failed", summed over the runs.
set -u
ROOT=${DYNAFILE_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$ROOT" || exit 1
export LUA_PATH=${LUA_PATH:-"$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;"}
export LUA_CPATH=${LUA_CPATH:-"$ROOT/build/lua5.4/?.so;;"}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dynafile-diskfull.XXXXXX") || exit 1
MNT="$WORK/mnt"
cleanup() {
  if mountpoint -q "$MNT" 2>/dev/null; then umount "$MNT"; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

pass=0
fail=0
add_counts() {
  local c
  c=$(sed -n -E 's/^([0-9]+) passed, ([0-9]+) failed$/\1 \2/p' "$1" | tail -n 1)
  if [ -z "$c" ]; then
    fail=$((fail + 1))
    echo "FAIL  $2: no summary (crashed?)"
  else
    set -- $c
    pass=$((pass + $1))
    fail=$((fail + $2))
  fi
}

# ---- a small tmpfs
mkdir -p "$MNT"
if mount -t tmpfs -o size=2m dynafile-diskfull "$MNT" 2>/dev/null; then
  echo "-- a 2 MB tmpfs ($(df -h "$MNT" | awk 'NR==2 {print $2}'))"
  # 256 KB of ballast, removed at the end to free space
  head -c 262144 /dev/zero >"$MNT/ballast"
  lua5.4 tests/diskfull/fill.lua "$MNT/db" "$MNT/ballast" >"$WORK/tmpfs.log" 2>&1
  cat "$WORK/tmpfs.log"
  add_counts "$WORK/tmpfs.log" tmpfs
  umount "$MNT"
else
  echo "-- cannot mount a tmpfs here (not root?): the file-size limit below is the test"
fi

# ---- a file-size limit (always)
echo "-- a 2 MB file-size limit (ulimit -f)"
( trap '' XFSZ; ulimit -f 2048; exec lua5.4 tests/diskfull/fill.lua "$WORK/db" ) \
  >"$WORK/rlimit.log" 2>&1
cat "$WORK/rlimit.log"
add_counts "$WORK/rlimit.log" "file-size limit"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
