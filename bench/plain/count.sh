#!/bin/sh
# bench/plain/count.sh: instructions per plain item (bench/plain/items.lua)
# counted by callgrind under Lua 5.4, for the checkout ROOT (default: this
# one, built with `make`):
#
#   sh bench/plain/count.sh [ROOT] [PHASE...]
#
# Prints one line per table, phase and seed: instructions per item put,
# per get_item, per query, then their mean over the seeds.  Each phase runs
# at two counts and the difference is divided by the difference in count
# (start-up, loading modules and fixed costs drop out).  Lua's string hash
# seed, which orders each item's attributes, is fixed per run through
# fixtime.c (SEEDS: the times it gives, default "1 2 3"), so a figure is
# the same from run to run and two builds compare on the same orders (the
# environment is reduced to what the run needs: its size moves the stack).
set -e
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "${1:-$here/../..}" && pwd)
[ $# -gt 0 ] && shift
phases=${*:-load get query}
seeds=${SEEDS:-1 2 3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The seed also mixes in a stack address, which moves with the length of
# the environment: every checkout is reached through a path of one length.
ln -s "$root" "$tmp/root"
LUA_PATH="$tmp/root/lua/?.lua;$tmp/root/lua/?/init.lua;;"
LUA_CPATH="$tmp/root/build/lua5.4/?.so;;"
export LUA_PATH LUA_CPATH
cc -shared -fPIC -O2 -o "$tmp/fixtime.so" "$here/fixtime.c"

# Instructions of: items.lua $2 $3 $4 with the seed time $1
count() {
  n=$(env -i PATH="$PATH" LUA_PATH="$LUA_PATH" LUA_CPATH="$LUA_CPATH" \
        FIXTIME_AT="$1" LD_PRELOAD="$tmp/fixtime.so" \
        valgrind --tool=callgrind --callgrind-out-file=/dev/null lua5.4 "$here/items.lua" "$2" "$3" "$4" 2>&1 >/dev/null |
      sed -n 's/.*Collected : *\([0-9]*\).*/\1/p')
  [ -n "$n" ] || { echo "count.sh: items.lua $2 $3 $4 failed" >&2; exit 1; }
  echo "$n"
}

for keys in string int; do
  for phase in $phases; do
    case $phase in
      load) lo=1000 hi=3000 ;;
      get) lo=1000 hi=5000 ;;
      query) lo=100 hi=400 ;;
      *) echo "count.sh: unknown phase $phase" >&2; exit 2 ;;
    esac
    sum=0 k=0
    for s in $seeds; do
      a=$(count "$s" $keys $phase $lo)
      b=$(count "$s" $keys $phase $hi)
      per=$(( (b - a) / (hi - lo) ))
      echo "$keys $phase seed $s: $per per item ($a at $lo, $b at $hi)"
      sum=$((sum + per)) k=$((k + 1))
    done
    echo "$keys $phase mean: $((sum / k)) per item"
  done
done
