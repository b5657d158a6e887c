#!/bin/sh
# bench/reads/count.sh: instructions per read of bench/reads.lua's
# workloads (bench/reads/count.lua), counted by callgrind under Lua 5.4, on
# ONE data set loaded once, for each checkout ROOT (default: this one, each
# built with `make`):
#
#   sh bench/reads/count.sh [ROOT ...]
#
# Timed figures of two builds (bench/reads.lua) differ by the noise of the
# machine and, when each build loads its own data, by the attribute order
# of every stored item (it follows the loading process's string hash
# seed): this counts both builds on the same bytes.  The data set is
# loaded by the first ROOT (bench/reads/phase.lua's load; a build that
# cannot read its format fails).
# Each workload runs at two counts and the difference is divided by the
# difference in count (start-up and opening drop out); Lua's string hash
# seed is fixed through bench/plain/fixtime.c, so a figure is the same
# from run to run.  Prints one line per checkout and workload: instructions
# per get, per query, per full scan.
set -e
here=$(cd "$(dirname "$0")" && pwd)
[ $# -gt 0 ] || set -- "$here/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -shared -fPIC -O2 -o "$tmp/fixtime.so" "$here/../plain/fixtime.c"

# run ROOT CMD...: CMD with the checkout ROOT's modules, reached through a path
# of one length (the seed also mixes in a stack address, which moves with
# the size of the environment)
run() {
  rm -f "$tmp/root"
  ln -s "$(cd "$1" && pwd)" "$tmp/root"
  shift
  env -i PATH="$PATH" FIXTIME_AT=1 LD_PRELOAD="$tmp/fixtime.so" \
    LUA_PATH="$tmp/root/lua/?.lua;$tmp/root/lua/?/init.lua;;" \
    LUA_CPATH="$tmp/root/build/lua5.4/?.so;;" "$@"
}

# count ROOT WORKLOAD N: instructions of count.lua WORKLOAD N
count() {
  n=$(run "$1" valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        lua5.4 "$here/count.lua" "$tmp/data" "$2" "$3" 2>&1 >/dev/null |
      sed -n 's/.*Collected : *\([0-9]*\).*/\1/p')
  [ -n "$n" ] || { echo "count.sh: $1: count.lua $2 $3 failed" >&2; exit 1; }
  echo "$n"
}

# (the load without address randomisation, as valgrind runs: the hash seed
# mixes in addresses, and the seed orders each stored item's attributes)
run "$1" setarch "$(uname -m)" -R lua5.4 "$here/phase.lua" dynafile load "$tmp/data" >/dev/null
for root in "$@"; do
  for spec in "get 2000 12000" "query_prefix 1000 6000" "query_part 200 1200" \
              "scan_string 1 3" "scan_lua 1 2"; do
    set -- $spec
    a=$(count "$root" "$1" "$2")
    b=$(count "$root" "$1" "$3")
    echo "$root $1: $(( (b - a) / ($3 - $2) )) instructions per $( [ "${1#scan}" != "$1" ] && echo scan || { [ "$1" = get ] && echo get || echo query; })"
  done
done
