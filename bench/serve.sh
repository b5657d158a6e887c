#!/usr/bin/env bash
# bench/serve.sh -- make bench-serve: `dynafile serve` against dynalite, in
# the same run, on GetItem, PutItem and a 10-item Query, driven by wrk
# (32 connections, bench/serve/wrk.lua) for BENCH_SECONDS each (default 10).
#
# For each operation and server it reports requests per second, p50 and
# p99 latency, and the server's CPU time per request (user + system time
# of all its processes over the run -- nginx's master and workers, or
# dynalite's node -- divided by the requests).  Then the ratios
# dynafile/dynalite against the targets of issue 17, and the time from
# launching `dynafile serve` to its first answered request.  For scale it
# also measures the floor nginx sets (a content_by_lua handler sending a
# fixed answer: CPU per request no nginx-hosted server goes below) and
# serve's Lua path alone, in-process (bench/serve/handler.lua).  Exits non-zero
# when a request failed or a target was missed.
#
# Environment: BENCH_SECONDS, BENCH_PARTITIONS (default 2000: 20,000
# items), SERVE_WORKERS (default: cores), SERVE_SYNC (default: serve's).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
SECONDS_EACH=${BENCH_SECONDS:-10}
PARTS=${BENCH_PARTITIONS:-2000}
WORKERS=${SERVE_WORKERS:-$(nproc)}
TICK=$(getconf CLK_TCK)
T=$(mktemp -d /tmp/dynafile-bench-serve.XXXXXX)
SERVE_PID=""
DYN_PID=""
CANNED_PID=""
cleanup() {
  [ -n "$SERVE_PID" ] && kill -TERM "$SERVE_PID" 2>/dev/null
  [ -n "$CANNED_PID" ] && kill -TERM "$CANNED_PID" 2>/dev/null
  [ -n "$DYN_PID" ] && kill -TERM "$DYN_PID" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for cmd in wrk node nginx lua5.4 curl; do
  command -v "$cmd" >/dev/null || { echo "bench-serve: $cmd is missing (make deps)"; exit 1; }
done

free_port() { node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

# CPU ticks of a process and its descendants
cpu_ticks() {
  local total=0 p
  for p in $(descendants "$1"); do
    if [ -r "/proc/$p/stat" ]; then
      set -- $(sed 's/^.*) //' "/proc/$p/stat")
      total=$((total + ${12} + ${13}))
    fi
  done
  echo "$total"
}
descendants() {
  local p=$1 c
  echo "$p"
  for c in $(cat "/proc/$p/task/$p/children" 2>/dev/null); do descendants "$c"; done
}

# ------------------------------------------------------------ servers
PORT_S=$(free_port)
export LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;" LUA_CPATH="$ROOT/build/lua5.4/?.so;;"
lua5.4 bin/dynafile serve "$T/data" --port "$PORT_S" --workers "$WORKERS" \
  ${SERVE_SYNC:+--sync "$SERVE_SYNC"} >"$T/serve.log" 2>&1 &
SERVE_PID=$!
node tests/js/dynalite-server.js >"$T/dynalite.out" 2>&1 &
DYN_PID=$!
for _ in $(seq 200); do
  curl -s -o /dev/null "http://127.0.0.1:$PORT_S/" && [ -s "$T/dynalite.out" ] && break
  sleep 0.05
done
PORT_D=$(cut -d' ' -f1 "$T/dynalite.out")
DYN_NODE=$(cut -d' ' -f2 "$T/dynalite.out")
echo "dynafile serve: 127.0.0.1:$PORT_S ($WORKERS workers, $(sed -n 's/.*sync \([a-z]*\).*/\1/p' "$T/serve.log" | head -1) sync); dynalite: 127.0.0.1:$PORT_D"
for target in "serve $PORT_S" "dynalite $PORT_D"; do
  set -- $target
  if ! node bench/serve/load.js "http://127.0.0.1:$2" bench "$PARTS" >"$T/load.log" 2>&1; then
    cat "$T/load.log"
    echo "bench-serve: loading $1 failed"
    exit 1
  fi
done
echo "loaded $PARTS partitions of 10 items into each"

declare -A RPS P50 P99 CPU
FAILED=0
for op in get put query; do
  for target in serve dynalite; do
    if [ "$target" = serve ]; then port=$PORT_S pid=$SERVE_PID; else port=$PORT_D pid=$DYN_NODE; fi
    c0=$(cpu_ticks "$pid")
    out=$(wrk -t2 -c32 -d"${SECONDS_EACH}s" --latency -s bench/serve/wrk.lua "http://127.0.0.1:$port/" \
      -- "$op" bench "$PARTS" 2>&1)
    c1=$(cpu_ticks "$pid")
    line=$(printf '%s\n' "$out" | grep '^RESULT')
    if [ -z "$line" ]; then printf '%s\n' "$out"; echo "bench-serve: wrk failed"; exit 1; fi
    eval "$(printf '%s' "$line" | sed 's/^RESULT //')"
    if [ "$errors" -ne 0 ] || [ "$non2xx" -ne 0 ]; then
      echo "FAIL $op on $target: $errors socket errors, $non2xx non-2xx answers"
      FAILED=1
    fi
    RPS[$op.$target]=$(awk -v r="$requests" -v d="$duration_us" 'BEGIN { printf "%.0f", r / (d / 1e6) }')
    P50[$op.$target]=$(awk -v x="$p50_us" 'BEGIN { printf "%.2f", x / 1000 }')
    P99[$op.$target]=$(awk -v x="$p99_us" 'BEGIN { printf "%.2f", x / 1000 }')
    CPU[$op.$target]=$(awk -v t=$((c1 - c0)) -v hz="$TICK" -v r="$requests" 'BEGIN { printf "%.1f", t / hz * 1e6 / r }')
  done
done

STARTUP=$(node bench/serve/startup.js "$ROOT" "$(free_port)" 5 | sed -n 's/^STARTUP //p')

# The floor nginx sets: the same GetItem requests answered by a
# content_by_lua handler that reads the body and sends a fixed answer with
# serve's headers (no JSON, no table) -- what any nginx-hosted server pays
# per request on this machine.
PORT_C=$(free_port)
mkdir -p "$T/canned/conf" "$T/canned/tmp"
cat >"$T/canned/conf/nginx.conf" <<CONF
load_module $(ls /usr/lib/nginx/modules/ndk_http_module.so /usr/share/nginx/modules/ndk_http_module.so 2>/dev/null | head -1);
load_module $(ls /usr/lib/nginx/modules/ngx_http_lua_module.so /usr/share/nginx/modules/ngx_http_lua_module.so 2>/dev/null | head -1);
daemon off;
master_process on;
worker_processes $WORKERS;
pid $T/canned/nginx.pid;
error_log stderr warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $T/canned/tmp;
  keepalive_requests 10000000;
  server {
    listen 127.0.0.1:$PORT_C reuseport backlog=4096;
    location / {
      content_by_lua_block {
        ngx.req.read_body()
        local req = ngx.req.get_body_data()
        local target = ngx.var.http_x_amz_target
        local body = '{"Item":{"pk":{"S":"p1"},"sk":{"N":"1"},"v":{"S":"' .. string.rep("x", 64) .. '"}}}'
        ngx.status = 200
        ngx.header["Content-Type"] = "application/x-amz-json-1.0"
        ngx.header["x-amzn-RequestId"] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABC1000000000001"
        ngx.header["x-amz-crc32"] = ngx.crc32_long(body)
        ngx.header["Content-Length"] = #body
        ngx.print(body)
        return ngx.exit(200)
      }
    }
  }
}
CONF
nginx -p "$T/canned/" -c "$T/canned/conf/nginx.conf" -e stderr >"$T/canned.log" 2>&1 &
CANNED_PID=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT_C/" && break; sleep 0.05; done
c0=$(cpu_ticks "$CANNED_PID")
out=$(wrk -t2 -c32 -d"${SECONDS_EACH}s" --latency -s bench/serve/wrk.lua "http://127.0.0.1:$PORT_C/" \
  -- get bench "$PARTS" 2>&1)
c1=$(cpu_ticks "$CANNED_PID")
kill -TERM "$CANNED_PID" 2>/dev/null
wait "$CANNED_PID" 2>/dev/null
CANNED=""
line=$(printf '%s\n' "$out" | grep '^RESULT')
if [ -n "$line" ]; then
  eval "$(printf '%s' "$line" | sed 's/^RESULT //')"
  CANNED=$(awk -v t=$((c1 - c0)) -v hz="$TICK" -v r="$requests" -v d="$duration_us" \
    'BEGIN { printf "%.0f req/s, %.1f us CPU per request", r / (d / 1e6), t / hz * 1e6 / r }')
fi

# serve's own Lua path per request, in one LuaJIT process (no HTTP): the
# part of the cost dynafile serve decides, measured without the noise of
# the processes around it
HANDLER=$(LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;" LUA_CPATH="$ROOT/build/luajit/?.so;;" \
  SERVE_SYNC="${SERVE_SYNC:-normal}" luajit bench/serve/handler.lua 20000 get query put 2>&1)

echo
printf '%-8s %-9s %10s %9s %9s %14s\n' operation server "req/s" "p50 ms" "p99 ms" "CPU us/req"
for op in get put query; do
  for target in serve dynalite; do
    printf '%-8s %-9s %10s %9s %9s %14s\n' "$op" "$target" "${RPS[$op.$target]}" "${P50[$op.$target]}" \
      "${P99[$op.$target]}" "${CPU[$op.$target]}"
  done
done
echo
[ -n "$CANNED" ] && echo "nginx floor (a fixed GetItem answer from content_by_lua): $CANNED"
printf '%s\n' "$HANDLER" | sed 's/^/lua path: /'
echo
MISSED=0
# target: op, minimum throughput ratio, maximum CPU ratio
check() {
  local op=$1 rmin=$2 cmax=$3 name=$4
  local r c
  r=$(awk -v a="${RPS[$op.serve]}" -v b="${RPS[$op.dynalite]}" 'BEGIN { printf "%.2f", a / b }')
  c=$(awk -v a="${CPU[$op.serve]}" -v b="${CPU[$op.dynalite]}" 'BEGIN { printf "%.3f", a / b }')
  local ok1 ok2
  ok1=$(awk -v r="$r" -v m="$rmin" 'BEGIN { print (r >= m) ? "met" : "MISSED" }')
  ok2=$(awk -v c="$c" -v m="$cmax" 'BEGIN { print (c <= m) ? "met" : "MISSED" }')
  printf '%-8s throughput %5sx dynalite (target >= %sx: %s); CPU per request %sx (target <= %s: %s)\n' \
    "$name" "$r" "$rmin" "$ok1" "$c" "$cmax" "$ok2"
  [ "$ok1" = met ] && [ "$ok2" = met ] || MISSED=1
}
check get 3 0.2 GetItem
check query 10 0.1 Query
check put 3 0.25 PutItem
set -- $STARTUP
ok=$(awk -v m="$1" 'BEGIN { print (m < 200) ? "met" : "MISSED" }')
echo "startup: first request answered after $1 ms (median of 5; min $2, max $3; target < 200 ms: $ok)"
[ "$ok" = met ] || MISSED=1
[ "$FAILED" -eq 0 ] || { echo "bench-serve: some requests failed"; exit 1; }
[ "$MISSED" -eq 0 ] || exit 2
