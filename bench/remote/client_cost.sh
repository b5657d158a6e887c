#!/usr/bin/env bash
# bench/remote/client_cost.sh -- instructions per GetItem the DynamoDB
# backend's client adds to the bare HTTP exchange, counted by callgrind
# (bench/remote/client_cost.lua), for each Lua given (default: lua5.4
# luajit; each needs its build: make LUA=...).  Against dynalite on a free
# 127.0.0.1 port; the server's own work is not counted (another process).
#   bash bench/remote/client_cost.sh [lua5.4] [luajit]
# COST_CRYPTO=luaossl (or "libcrypto (FFI)") signs through another provider.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
T=$(mktemp -d /tmp/dynafile-client-cost.XXXXXX)
DL_PID=""
trap '[ -n "$DL_PID" ] && kill "$DL_PID" 2>/dev/null; rm -rf "$T"' EXIT
command -v valgrind >/dev/null || { echo "valgrind is not installed"; exit 1; }
mkfifo "$T/dl.fifo"
env -u LD_PRELOAD node tests/js/dynalite-server.js >"$T/dl.fifo" &
read -r PORT DL_PID <"$T/dl.fifo"
E="http://127.0.0.1:$PORT"
N=${COST_N:-40}
# instructions of one run (callgrind's total)
count() {
  local lua=$1 mode=$2 n=$3
  LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/$lua/?.so;;" \
    valgrind --tool=callgrind --callgrind-out-file="$T/cg.out" \
    "$lua" bench/remote/client_cost.lua "$E" "$mode" "$n" 2>"$T/cg.err" >/dev/null ||
    { cat "$T/cg.err"; exit 1; }
  sed -n 's/^summary: //p' "$T/cg.out"
}
for lua in "${@:-lua5.4 luajit}"; do
  for l in $lua; do
    LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/$l/?.so;;" \
      COST_SETUP=1 "$l" bench/remote/client_cost.lua "$E" api 0
    declare -A per=()
    for mode in api bare sign http codec; do
      a=$(count "$l" "$mode" "$N")
      b=$(count "$l" "$mode" $((5 * N)))
      per[$mode]=$(( (b - a) / (4 * N) ))
    done
    echo "$l: per GetItem ${per[api]} instructions through db:get_item, ${per[bare]} for the" \
      "bare exchange: the client adds $(( per[api] - per[bare] )); of which signing" \
      "${per[sign]}, its HTTP layer $(( per[http] - per[bare] )) over the bare exchange's," \
      "the answer's JSON and values ${per[codec]}, the rest $(( per[api] - per[http] - per[sign] - per[codec] ))"
  done
done
