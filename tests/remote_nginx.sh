#!/usr/bin/env bash
# remote_nginx.sh -- the DynamoDB backend inside 4 nginx workers (run by
# make test).
#
# Starts dynalite (tests/js) on a free 127.0.0.1 port, then nginx with its
# Lua module and 4 workers, each opening "dynamodb://nginx_remote" in
# init_worker_by_lua (LuaSocket there: nginx has no cosockets in that
# phase) and serving tests/remote/nginx_api.lua, whose requests reach
# dynalite through nginx cosockets.  8 concurrent curl clients (4 transfers
# in flight each) send 2,000 puts of distinct keys and 2,000 increments of
# 20 counters.  Then: every answer was a success from a worker that used
# cosockets, all 4 workers answered, every acknowledged put reads back
# (from Lua 5.4, straight from dynalite), and each counter equals the
# increments acknowledged for it.  The last line is "N passed, N failed".
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
MAKE=${MAKE:-make}
MODULES=/usr/lib/nginx/modules
WORKERS=4
CLIENTS=8
INFLIGHT=4
PUTS=2000
ADDS=2000
COUNTERS=20

PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok   $1"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL $1${2:+: $2}"; }
finish() {
  if [ "$FAIL" -ne 0 ] && [ -s "$T/logs/error.log" ]; then
    echo "---- nginx error.log (last 40 lines)"
    tail -n 40 "$T/logs/error.log"
  fi
  echo "$PASS passed, $FAIL failed"
  [ "$FAIL" -eq 0 ]
  exit
}

T=$(mktemp -d /tmp/dynafile-remote-nginx.XXXXXX) || exit 1
NGINX_PID=""
DL_PID=""
cleanup() {
  if [ -n "$NGINX_PID" ] && kill -0 "$NGINX_PID" 2>/dev/null; then
    kill -QUIT "$NGINX_PID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$NGINX_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$NGINX_PID" 2>/dev/null
  fi
  [ -n "$DL_PID" ] && kill "$DL_PID" 2>/dev/null
  [ -n "${KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for cmd in nginx curl lua5.4 node; do
  command -v "$cmd" >/dev/null 2>&1 || { bad "prerequisite: $cmd" "not installed"; finish; }
done
[ -f "$MODULES/ngx_http_lua_module.so" ] ||
  { bad "prerequisite: nginx Lua module" "no $MODULES/ngx_http_lua_module.so"; finish; }
[ -d tests/js/node_modules/dynalite ] ||
  { bad "prerequisite: dynalite" "run make js-deps"; finish; }
for lua in luajit lua5.4; do
  if ! $MAKE --no-print-directory -s LUA=$lua all >"$T/build.log" 2>&1; then
    cat "$T/build.log"
    bad "build: the module for $lua" "make LUA=$lua failed"
    finish
  fi
done

# ------------------------------------------------------------ dynalite
mkfifo "$T/dl.fifo"
node tests/js/dynalite-server.js >"$T/dl.fifo" 2>"$T/dl.err" &
read -r DL_PORT DL_PID <"$T/dl.fifo" || true
if [ -z "${DL_PORT:-}" ]; then bad "dynalite starts" "$(cat "$T/dl.err")"; finish; fi
ENDPOINT="http://127.0.0.1:$DL_PORT"
export LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;"
export LUA_CPATH="$ROOT/build/lua5.4/?.so;;"
# the table is made once, before the workers open it
lua5.4 -e "assert(require('dynafile').open('dynamodb://nginx_remote',
  {endpoint = '$ENDPOINT', region = 'us-east-1'})):close()" >"$T/err" 2>&1 &&
  ok "dynalite runs on 127.0.0.1:$DL_PORT and the table exists" ||
  { bad "the table is created" "$(cat "$T/err")"; finish; }

# ------------------------------------------------------------ nginx
mkdir -p "$T/conf" "$T/lua/dynafile/remote" "$T/lib/dynafile" "$T/logs" "$T/tmp"
cp lua/dynafile/*.lua "$T/lua/dynafile/"
cp lua/dynafile/remote/*.lua "$T/lua/dynafile/remote/"
cp tests/remote/nginx_api.lua "$T/lua/"
cp build/luajit/dynafile/core.so "$T/lib/dynafile/"
chmod -R a+rX "$T"
chmod a+rwx "$T/tmp"

# Ports below the kernel's ephemeral range (32768-60999 by default): a
# client connection of another test never holds one (nginx would log an
# [emerg] bind() failure while it retried).
pick_port() { echo $((20000 + (RANDOM % 12000))); }
write_conf() {
  cat >"$T/conf/nginx.conf" <<EOF
load_module $MODULES/ndk_http_module.so;
load_module $MODULES/ngx_http_lua_module.so;
$([ "$(id -u)" -eq 0 ] && echo "user nobody nogroup;")
worker_processes $WORKERS;
pid logs/nginx.pid;
error_log logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path tmp/body;
  proxy_temp_path tmp/proxy;
  fastcgi_temp_path tmp/fastcgi;
  uwsgi_temp_path tmp/uwsgi;
  scgi_temp_path tmp/scgi;
  lua_package_path "\$prefix/lua/?.lua;\$prefix/lua/?/init.lua;;";
  lua_package_cpath "\$prefix/lib/?.so;;";
  init_by_lua_block { require "dynafile" }
  init_worker_by_lua_block { require("nginx_api").init_worker("$ENDPOINT") }
  server {
    listen 127.0.0.1:$1 reuseport;
    keepalive_requests 100000;
    location / { content_by_lua_block { require("nginx_api").handle() } }
  }
}
EOF
}
PORT=$(pick_port)
started=""
for _ in 1 2 3 4 5; do
  write_conf "$PORT"
  rm -f "$T/logs/nginx.pid"
  if nginx -p "$T/" -c "$T/conf/nginx.conf" >"$T/err" 2>&1; then
    for _ in $(seq 50); do [ -s "$T/logs/nginx.pid" ] && break; sleep 0.1; done
    NGINX_PID=$(cat "$T/logs/nginx.pid" 2>/dev/null)
    started=1
    break
  fi
  grep -q "Address already in use" "$T/err" "$T/logs/error.log" 2>/dev/null || break
  PORT=$(pick_port)
done
[ -n "$started" ] && [ -n "$NGINX_PID" ] ||
  { bad "nginx starts" "$(cat "$T/err" "$T/logs/error.log" 2>/dev/null)"; finish; }
URL="http://127.0.0.1:$PORT"
up=""
for _ in $(seq 100); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$URL/get?k=none")" = 404 ] &&
    { up=1; break; }
  sleep 0.1
done
[ -n "$up" ] || { bad "nginx starts and answers" "$(cat "$T/logs/error.log")"; finish; }
ok "nginx runs $WORKERS workers on port $PORT"

# ------------------------------------------------------------ load
for c in $(seq "$CLIENTS"); do : >"$T/c$c.cfg"; done
i=0
while [ $i -lt $PUTS ]; do
  printf 'url = "%s"\noutput = "/dev/null"\n' "$URL/put?k=key$i&v=value$i" \
    >>"$T/c$(( i % CLIENTS + 1 )).cfg"
  printf 'url = "%s"\noutput = "/dev/null"\n' "$URL/add?k=counter$(( i % COUNTERS ))" \
    >>"$T/c$(( (i + 3) % CLIENTS + 1 )).cfg"
  i=$((i + 1))
done
FORMAT='%{http_code} %{url_effective} %header{x-worker} %header{x-cosockets}\n'
start=$(date +%s.%N)
pids=""
for c in $(seq "$CLIENTS"); do
  timeout 300 curl -s -Z --parallel-max "$INFLIGHT" --max-time 60 -w "$FORMAT" \
    -K "$T/c$c.cfg" >"$T/c$c.out" 2>"$T/c$c.err" &
  pids="$pids $!"
done
# shellcheck disable=SC2086
wait $pids
end=$(date +%s.%N)
echo "---- $((PUTS + ADDS)) requests in $(echo "$end - $start" | bc) s"
cat "$T"/c*.out >"$T/all.out"
total=$(wc -l <"$T/all.out")
good=$(grep -c '^200 .* true$' "$T/all.out")
[ "$total" -eq $((PUTS + ADDS)) ] && [ "$good" -eq "$total" ] &&
  ok "all $total requests succeeded through cosockets" ||
  bad "every request succeeds through cosockets" "$good of $total (of $((PUTS + ADDS)))"
workers=$(awk '{print $3}' "$T/all.out" | sort -u | grep -c .)
[ "$workers" -eq "$WORKERS" ] && ok "all $WORKERS workers answered" ||
  bad "all workers answer" "$workers answered"

# ------------------------------------------------------------ verify
grep '^200 .*/put?' "$T/all.out" | sed 's/.*k=\(key[0-9]*\)&v=\(value[0-9]*\).*/\1 \2/' >"$T/puts"
grep '^200 .*/add?' "$T/all.out" | sed 's/.*k=\(counter[0-9]*\).*/\1/' | sort | uniq -c >"$T/adds"
lua5.4 - "$ENDPOINT" "$T/puts" "$T/adds" <<'EOF' >"$T/verify" 2>&1
local endpoint, puts, adds = arg[1], arg[2], arg[3]
local db = assert(require("dynafile").open("dynamodb://nginx_remote",
  { endpoint = endpoint, region = "us-east-1" }))
local n, lost = 0, 0
for line in io.lines(puts) do
  local k, v = line:match("^(%S+) (%S+)$")
  n = n + 1
  local item = db:get_item({ PK = k, SK = "v" })
  if not item or item.v ~= v then lost = lost + 1 end
end
print("puts", n, lost)
local wrong = 0
for line in io.lines(adds) do
  local count, k = line:match("^%s*(%d+) (%S+)$")
  local item = db:get_item({ PK = k, SK = "c" })
  if not item or item.n ~= tonumber(count) then wrong = wrong + 1 end
end
print("counters", wrong)
EOF
read -r _ nputs lost < <(grep '^puts' "$T/verify")
[ "${nputs:-0}" -eq "$PUTS" ] && [ "${lost:-1}" -eq 0 ] &&
  ok "every acknowledged put reads back ($nputs)" ||
  bad "every acknowledged put reads back" "$(cat "$T/verify")"
read -r _ wrong < <(grep '^counters' "$T/verify")
[ "${wrong:-1}" -eq 0 ] && ok "each of the $COUNTERS counters equals its acknowledged increments" ||
  bad "counters equal their increments" "$(cat "$T/verify")"
finish
