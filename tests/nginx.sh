#!/usr/bin/env bash
# nginx.sh -- dynafile under real nginx workers (run by make test).
#
# Starts nginx with its Lua module (LuaJIT) on a free loopback port with 4
# workers: `require "dynafile"` in init_by_lua (the master), the database
# opened in init_worker_by_lua (each worker, after the fork), and the API
# of tests/nginx/api.lua, whose GETs go through a per-worker cache kept
# correct by the change feed (db:poll_stream).  Then 8 concurrent curl
# clients (4 transfers in flight each) drive 20,000 requests in four
# phases of 5,000:
#   put_a   PUT every key (value a<k>)
#   get_a   GET every key: fills the workers' caches
#   put_b   PUT every key again (value b<k>), through whichever worker
#   read_b  GETs and partition queries: every answer must show b<k>, so a
#           worker that cached a<k> must have heard of the change made by
#           another worker
# Afterwards every acknowledged write is checked from every one of the 4
# workers (listen ... reuseport spreads connections over the workers),
# nginx is stopped, and Lua 5.4 reads the same values.  Everything runs on
# 127.0.0.1 and is bounded by timeouts.  The last line printed is
# "N passed, N failed".
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
MAKE=${MAKE:-make}
MODULES=/usr/lib/nginx/modules
WORKERS=4
CLIENTS=8
INFLIGHT=4
KEYS=5000

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

# Under /tmp: as root the workers run as nobody, who must reach the prefix.
T=$(mktemp -d /tmp/dynafile-nginx.XXXXXX) || exit 1
NGINX_PID=""
cleanup() {
  if [ -n "$NGINX_PID" ] && kill -0 "$NGINX_PID" 2>/dev/null; then
    kill -QUIT "$NGINX_PID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$NGINX_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$NGINX_PID" 2>/dev/null
  fi
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------ prerequisites
for cmd in nginx curl lua5.4; do
  command -v "$cmd" >/dev/null 2>&1 || { bad "prerequisite: $cmd" "not installed"; finish; }
done
[ -f "$MODULES/ngx_http_lua_module.so" ] ||
  { bad "prerequisite: nginx Lua module" "no $MODULES/ngx_http_lua_module.so"; finish; }
for lua in luajit lua5.4; do
  if ! $MAKE --no-print-directory -s LUA=$lua all >"$T/build.log" 2>&1; then
    cat "$T/build.log"
    bad "build: the module for $lua" "make LUA=$lua failed"
    finish
  fi
done
ok "the module builds against LuaJIT (nginx's Lua) and Lua 5.4"

# ------------------------------------------------------------ the prefix
mkdir -p "$T/conf" "$T/lua/dynafile" "$T/lib/dynafile" "$T/logs" "$T/tmp" "$T/data" "$T/run"
cp lua/dynafile/*.lua "$T/lua/dynafile/"
cp tests/nginx/api.lua "$T/lua/"
cp build/luajit/dynafile/core.so "$T/lib/dynafile/"
chmod -R a+rX "$T"
chmod a+rwx "$T/data" "$T/tmp"

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
  # the module is loaded once, in the master, before it forks the workers
  init_by_lua_block {
    require "dynafile"
    require "api"
  }
  # the database is opened in each worker, after the fork
  init_worker_by_lua_block {
    require("api").init_worker(ngx.config.prefix() .. "data/db")
  }
  server {
    # one listening socket per worker: connections spread over all of them
    listen 127.0.0.1:$1 reuseport;
    keepalive_requests 100000;
    location / {
      content_by_lua_block { require("api").handle() }
    }
  }
}
EOF
}

PORT=$(pick_port)
write_conf "$PORT"
if nginx -t -q -p "$T/" -c "$T/conf/nginx.conf" >"$T/err" 2>&1; then
  ok "nginx -t accepts the configuration"
else
  bad "nginx -t accepts the configuration" "$(cat "$T/err")"
  finish
fi

started=""
for _ in 1 2 3 4 5; do
  rm -f "$T/logs/nginx.pid"
  if nginx -p "$T/" -c "$T/conf/nginx.conf" >"$T/err" 2>&1; then
    for _ in $(seq 50); do [ -s "$T/logs/nginx.pid" ] && break; sleep 0.1; done
    NGINX_PID=$(cat "$T/logs/nginx.pid" 2>/dev/null)
    started=1
    break
  fi
  grep -q "Address already in use" "$T/err" "$T/logs/error.log" 2>/dev/null || break
  PORT=$(pick_port)
  write_conf "$PORT"
done
if [ -z "$started" ] || [ -z "$NGINX_PID" ]; then
  bad "nginx starts" "$(cat "$T/err" "$T/logs/error.log" 2>/dev/null)"
  finish
fi
URL="http://127.0.0.1:$PORT"
up=""
for _ in $(seq 100); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$URL/kv/0")" = 404 ] &&
    { up=1; break; }
  sleep 0.1
done
[ -n "$up" ] || { bad "nginx starts and answers" "$(cat "$T/logs/error.log")"; finish; }
workers=$(grep -lE "^PPid:[[:space:]]+$NGINX_PID\$" /proc/[0-9]*/status 2>/dev/null | wc -l)
if [ "$workers" -eq "$WORKERS" ]; then
  ok "nginx runs $WORKERS workers on port $PORT"
else
  bad "nginx runs $WORKERS workers" "found $workers"
fi

# ------------------------------------------------------------ the load
lua5.4 tests/nginx/check.lua plan "$T/run" "$URL" "$CLIENTS" "$KEYS" ||
  { bad "request lists are written"; finish; }
FORMAT='%{http_code} %{url_effective} %header{x-v} %header{x-items} %header{x-worker} %header{x-error}\n'

# phase NAME [curl options]: CLIENTS curl processes at once, INFLIGHT
# transfers each; then the answers are checked.
phase() {
  local name=$1 start end c
  shift
  start=$(date +%s.%N)
  for c in $(seq "$CLIENTS"); do
    timeout 300 curl -s -Z --parallel-max "$INFLIGHT" --max-time 30 "$@" -w "$FORMAT" \
      -K "$T/run/$name.$c.cfg" >"$T/run/$name.$c.out" 2>"$T/run/$name.$c.err" &
  done
  wait
  end=$(date +%s.%N)
  echo "---- $name: $KEYS requests in $(echo "$end - $start" | bc) s"
  while read -r status rest; do
    case "$status" in
      ok) ok "$rest" ;;
      *) bad "$rest" ;;
    esac
  done < <(lua5.4 tests/nginx/check.lua check "$T/run" "$name" "$CLIENTS" "$KEYS")
}

phase put_a -X PUT
phase get_a
phase put_b -X PUT
phase read_b

# ------------------------------------------------------------ every worker
# /verify checks every acknowledged write through the worker's cache; a
# fresh connection each time, until each of the 4 workers has answered.
acked=$(wc -l <"$T/run/acked")
chmod a+r "$T/run/acked"
chmod a+x "$T/run"
declare -A seen
for _ in $(seq 400); do
  line=$(curl -s -o /dev/null --max-time 60 \
    -w '%header{x-worker} %header{x-checked} %header{x-bad} %header{x-polled} %header{x-first}' \
    "$URL/verify?file=$T/run/acked")
  read -r w checked badn polled first <<<"$line"
  [ -n "${w:-}" ] || continue
  if [ -z "${seen[$w]:-}" ]; then
    seen[$w]=1
    if [ "$checked" = "$acked" ] && [ "$badn" = 0 ]; then
      ok "worker $w reads all $acked acknowledged writes (the feed delivered it $polled changes)"
    else
      bad "worker $w reads all $acked acknowledged writes" \
        "checked $checked, $badn wrong, first: $first"
    fi
  fi
  [ "${#seen[@]}" -eq "$WORKERS" ] && break
done
[ "${#seen[@]}" -eq "$WORKERS" ] ||
  bad "every worker answered a check" "only ${!seen[*]} did"
[ "$acked" -eq "$KEYS" ] && ok "all $KEYS keys were acknowledged" ||
  bad "all $KEYS keys were acknowledged" "$acked"

# ------------------------------------------------------------ stop
kill -QUIT "$NGINX_PID"
for _ in $(seq 100); do kill -0 "$NGINX_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$NGINX_PID" 2>/dev/null; then
  bad "nginx stops on QUIT"
else
  ok "nginx stops on QUIT"
  NGINX_PID=""
fi
if grep -E '\[(alert|crit|emerg|error)\]' "$T/logs/error.log" >"$T/err"; then
  bad "the error log holds no errors" "$(head -c 2000 "$T/err")"
else
  ok "the error log holds no errors"
fi
got=$(DB=$T/data/db ACKED=$T/run/acked LUA_PATH="lua/?.lua;lua/?/init.lua;;" \
  LUA_CPATH="build/lua5.4/?.so;;" lua5.4 -e '
  local db = assert(require("dynafile").open(os.getenv("DB"), {readonly = true}))
  local n, wrong = 0, 0
  for line in io.lines(os.getenv("ACKED")) do
    local k, v = line:match("^(%d+) (%S+)$")
    k = tonumber(k)
    local item = db:get_item { PK = "p" .. (k % 50), SK = k }
    n = n + 1
    if not item or item.v ~= v then wrong = wrong + 1 end
  end
  print(n, wrong)' 2>&1)
if [ "$got" = "$(printf '%s\t0' "$acked")" ]; then
  ok "after nginx stopped, Lua 5.4 reads every acknowledged write"
else
  bad "after nginx stopped, Lua 5.4 reads every acknowledged write" "$got"
fi

finish
