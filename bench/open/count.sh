#!/bin/sh
# bench/open/count.sh: what an open (and close) of a database that needs
# no recovery costs, for each checkout ROOT (each built with `make`):
# system calls per open and close (strace -c), and CPU time per open and
# close (bench/open/open.lua: 2,000 opens, RUNS runs alternating between
# the checkouts, default 5; min and median).
#
#   sh bench/open/count.sh ROOT [ROOT ...]
#
# Each checkout opens a database it made itself (their formats may
# differ).  Compare a checkout with an earlier one: the figure is a ratio
# between builds in the same run, not against a peer.
set -e
here=$(cd "$(dirname "$0")" && pwd)
runs=${RUNS:-5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
i=0
for root in "$@"; do
  i=$((i + 1))
  echo "$(cd "$root" && pwd)" >"$tmp/root$i"
done
# run I N: open.lua for checkout I, N opens
run() {
  r=$(cat "$tmp/root$1")
  LUA_PATH="$r/lua/?.lua;$r/lua/?/init.lua;;" LUA_CPATH="$r/build/lua5.4/?.so;;" \
    lua5.4 "$here/open.lua" "$tmp/db$1" "$2"
}
k=1
while [ $k -le $i ]; do
  run $k 1 >/dev/null # makes the database
  r=$(cat "$tmp/root$k")
  LUA_PATH="$r/lua/?.lua;$r/lua/?/init.lua;;" LUA_CPATH="$r/build/lua5.4/?.so;;" \
    strace -f -c -o "$tmp/strace$k" lua5.4 "$here/open.lua" "$tmp/db$k" 1000 >/dev/null
  LUA_PATH="$r/lua/?.lua;$r/lua/?/init.lua;;" LUA_CPATH="$r/build/lua5.4/?.so;;" \
    strace -f -c -o "$tmp/strace0" lua5.4 "$here/open.lua" "$tmp/db$k" 0 >/dev/null
  a=$(awk '$NF == "total" { print $(NF - 2) }' "$tmp/strace0")
  b=$(awk '$NF == "total" { print $(NF - 2) }' "$tmp/strace$k")
  echo "$r: $(( (b - a + 500) / 1000 )) system calls per open and close"
  k=$((k + 1))
done
n=1
while [ $n -le "$runs" ]; do
  k=1
  while [ $k -le $i ]; do
    run $k 2000 >>"$tmp/cpu$k"
    k=$((k + 1))
  done
  n=$((n + 1))
done
k=1
while [ $k -le $i ]; do
  sort -n "$tmp/cpu$k" | awk -v r="$(cat "$tmp/root$k")" \
    '{ v[NR] = $1 } END { printf "%s: CPU per open and close: min %.1f us, median %.1f us\n", r, v[1], v[int((NR + 1) / 2)] }'
  k=$((k + 1))
done
