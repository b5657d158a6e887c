#!/usr/bin/env bash
# openresty_example.sh -- runs examples/openresty (nginx.conf + items_api.lua)
# under nginx with its Lua module, on a loopback port, and checks every
# endpoint with curl; then checks from Lua 5.4 that what the nginx workers
# (LuaJIT) wrote is in the database.
#
# Needs nginx, libnginx-mod-http-lua, curl (scripts/install-deps.sh), and
# builds the LuaJIT module if it is not built.  The last line printed is
# "N passed, N failed".
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
MAKE=${MAKE:-make}
MODULES=/usr/lib/nginx/modules

PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok   $1"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL $1${2:+: $2}"; }
# check NAME WANT GOT
check() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1" "want [$2], got [$3]"; fi; }
finish() {
  if [ "$FAIL" -ne 0 ] && [ -s "$T/logs/error.log" ]; then
    echo "---- nginx error.log (last 40 lines)"
    tail -n 40 "$T/logs/error.log"
  fi
  echo "$PASS passed, $FAIL failed"
  [ "$FAIL" -eq 0 ]
  exit
}

# Under /tmp rather than $TMPDIR: as root the workers run as nobody, and
# must be able to reach the prefix (a private TMPDIR may be mode 0700).
T=$(mktemp -d /tmp/dynafile-openresty.XXXXXX) || exit 1
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
for cmd in nginx curl luajit lua5.4; do
  command -v "$cmd" >/dev/null 2>&1 || { bad "prerequisite: $cmd" "not installed"; finish; }
done
[ -f "$MODULES/ngx_http_lua_module.so" ] ||
  { bad "prerequisite: nginx Lua module" "no $MODULES/ngx_http_lua_module.so"; finish; }
if [ ! -f build/luajit/dynafile/core.so ]; then
  $MAKE --no-print-directory -s LUA=luajit all >"$T/build.log" 2>&1 ||
    { cat "$T/build.log"; bad "build: LuaJIT module" "make LUA=luajit failed"; finish; }
fi
[ -f build/lua5.4/dynafile/core.so ] ||
  $MAKE --no-print-directory -s LUA=lua5.4 all >"$T/build.log" 2>&1 ||
    { cat "$T/build.log"; bad "build: Lua 5.4 module" "make failed"; finish; }

# ------------------------------------------------------------ syntax checks
if luajit -b examples/openresty/items_api.lua "$T/items_api.out" 2>"$T/err"; then
  ok "items_api.lua compiles under LuaJIT"
else
  bad "items_api.lua compiles under LuaJIT" "$(cat "$T/err")"
fi

# ------------------------------------------------------------ the prefix
# A copy, readable by the unprivileged workers whatever the checkout's
# permissions.
mkdir -p "$T/conf" "$T/lua/dynafile" "$T/lib/dynafile" "$T/logs" "$T/tmp" "$T/data"
cp lua/dynafile/*.lua "$T/lua/dynafile/"
cp examples/openresty/items_api.lua "$T/lua/"
cp build/luajit/dynafile/core.so "$T/lib/dynafile/"
chmod -R a+rX "$T"
chmod a+rwx "$T/data" "$T/tmp"

# A port: the example's 8080 replaced by a free-looking one; retried below.
# Ports below the kernel's ephemeral range (32768-60999 by default): a
# client connection of another test never holds one (nginx would log an
# [emerg] bind() failure while it retried).
pick_port() { echo $((20000 + (RANDOM % 12000))); }

write_conf() {
  {
    echo "load_module $MODULES/ndk_http_module.so;"
    echo "load_module $MODULES/ngx_http_lua_module.so;"
    # As root the workers would run as nobody:nobody, and Debian has no
    # group nobody.
    [ "$(id -u)" -eq 0 ] && echo "user nobody nogroup;"
    sed "s/listen 127\.0\.0\.1:8080;/listen 127.0.0.1:$1;/" examples/openresty/nginx.conf
  } >"$T/conf/nginx.conf"
}

PORT=$(pick_port)
write_conf "$PORT"
if grep -q "listen 127.0.0.1:$PORT;" "$T/conf/nginx.conf"; then
  ok "nginx.conf listens on 127.0.0.1:8080 (replaced by a test port)"
else
  bad "nginx.conf listens on 127.0.0.1:8080 (replaced by a test port)"
fi
if nginx -t -q -p "$T/" -c "$T/conf/nginx.conf" >"$T/err" 2>&1; then
  ok "nginx -t accepts the configuration"
else
  bad "nginx -t accepts the configuration" "$(cat "$T/err")"
  finish
fi

# ------------------------------------------------------------ start
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
ok "nginx starts (port $PORT, master $NGINX_PID)"

URL="http://127.0.0.1:$PORT"
up=""
for _ in $(seq 100); do
  curl -s -o /dev/null "$URL/items/x/y" && { up=1; break; }
  sleep 0.1
done
[ -n "$up" ] || { bad "the server answers" "$(cat "$T/logs/error.log")"; finish; }

# req METHOD PATH [BODY [HEADER]]: sets STATUS and BODY.
req() {
  local args=(-s -o "$T/body" -w '%{http_code}' -X "$1" --max-time 10)
  [ $# -ge 3 ] && args+=(--data-binary "$3" -H 'Content-Type: application/json')
  [ $# -ge 4 ] && args+=(-H "$4")
  STATUS=$(curl "${args[@]}" "$URL$2")
  BODY=$(cat "$T/body")
}

# json EXPR: evaluates the Lua expression EXPR with `j` = the decoded BODY.
json() {
  printf '%s' "$BODY" | EXPR=$1 lua5.4 -e '
    local cjson = require "cjson"
    local ok, j = pcall(cjson.decode, io.read("a"))
    if not ok then print("<not JSON>") return end
    local f = load("local j, null = ...; return " .. os.getenv("EXPR"))
    local ok2, v = pcall(f, j, cjson.null)
    print(ok2 and tostring(v) or "<" .. tostring(v) .. ">")'
}

# ------------------------------------------------------------ items
req PUT "/items/user%231/profile" '{"name": "Ada", "visits": 1, "tags": ["a", "b"], "extra": {"x": null}}'
check "PUT stores an item" "200" "$STATUS"
req GET "/items/user%231/profile"
check "GET returns it" "200" "$STATUS"
check "GET returns its attributes" "Ada 1 b user#1 profile" \
  "$(json 'j.name .. " " .. string.format("%d", j.visits) .. " " .. j.tags[2] .. " " .. j.PK .. " " .. j.SK')"
check "an integer goes out as an integer" '"visits":1' "$(printf '%s' "$BODY" | grep -o '"visits":[0-9.]*')"
check "a JSON null survives as null" "true" "$(json 'j.extra.x == null')"

req PUT "/items/user%231/profile" '{"name": "Eve"}' 'If-None-Match: *'
check "PUT with If-None-Match: * on an existing item is 412" "412" "$STATUS"
check "... with the code ConditionalCheckFailed" "ConditionalCheckFailed" "$(json 'j.code')"
req GET "/items/user%231/profile"
check "... and leaves the item alone" "Ada" "$(json 'j.name')"
req PUT "/items/user%232/profile" '{"name": "Bo"}' 'If-None-Match: *'
check "PUT with If-None-Match: * on a new item creates it" "201" "$STATUS"

req GET "/items/user%239/profile"
check "GET of a missing item is 404" "404" "$STATUS"
req PUT "/items/user%231/bad" '[1, 2]'
check "a body that is not a JSON object is 400" "400" "$STATUS"
req PUT "/items/user%231/bad" 'not json'
check "a body that is not JSON is 400" "400" "$STATUS"
long=$(printf 'k%.0s' $(seq 3000))
req PUT "/items/$long/x" '{}'
check "a partition key over 2048 bytes is 400" "400 ValidationError" "$STATUS $(json 'j.code')"
req PUT "/items/a%2Fb/c%20d" '{"v": 1}'
req GET "/items/a%2Fb/c%20d"
check "percent-encoded keys (%2F, %20)" "200 a/b c d" "$STATUS $(json 'j.PK .. " " .. j.SK')"
req POST "/items/user%231/profile" '{}'
check "an unknown method is 405" "405" "$STATUS"

# ------------------------------------------------------------ queries
for i in 1 2 3 4 5; do
  req PUT "/items/user%231/order%23$i" "{\"total\": $((i * 10))}"
  [ "$STATUS" = 200 ] || bad "PUT order $i" "$STATUS $BODY"
done
req GET "/items/user%231?begins_with=order%23"
check "query with begins_with" "200 5 order#1 order#5" \
  "$STATUS $(json '#j.items .. " " .. j.items[1].SK .. " " .. j.items[5].SK')"
check "... with nothing after it" "true" "$(json 'j.next == null')"
req GET "/items/user%231?begins_with=order%23&reverse=1&limit=2"
check "reverse, limit 2" "order#5 order#4 order#4" \
  "$(json 'j.items[1].SK .. " " .. j.items[2].SK .. " " .. j.next')"
seen="" after="" pages=0
while :; do
  req GET "/items/user%231?begins_with=order%23&limit=2${after:+&after=$after}"
  pages=$((pages + 1))
  seen="$seen$(json 'table.concat((function() local t = {} for i, x in ipairs(j.items) do t[i] = x.SK end return t end)(), ",")'),"
  next=$(json 'j.next == null and "" or j.next')
  [ -z "$next" ] || [ "$pages" -gt 10 ] && break
  after=$(printf '%s' "$next" | sed 's/#/%23/g')
done
check "paging with after= visits every item once" "order#1,order#2,order#3,order#4,order#5," \
  "$(printf '%s' "$seen" | tr -s ',')"
req GET "/items/user%231?filter=total%20%3E%3D%2030"
check "a filter expression" "200 3" "$STATUS $(json '#j.items')"
req GET "/items/user%231?filter=total%20%3E"
check "a filter that does not parse is 400 ValidationError" "400 ValidationError" \
  "$STATUS $(json 'j.code')"
req GET "/items/nobody"
check "an empty partition is an empty list" "200 [] true" \
  "$STATUS $(printf '%s' "$BODY" | grep -o '\[\]') $(json 'j.next == null')"

# ------------------------------------------------------------ both workers
# 40 concurrent writes, spread over the two workers by the kernel.
for i in $(seq 40); do
  curl -s -o /dev/null -X PUT --data-binary "{\"n\": $i}" "$URL/items/load/k$(printf %03d "$i")" &
done
wait
req GET "/items/load?limit=1000"
check "40 concurrent PUTs are all stored" "40" "$(json '#j.items')"
workers=$(grep -lE "^PPid:[[:space:]]+$NGINX_PID\$" /proc/[0-9]*/status 2>/dev/null | wc -l)
check "nginx runs two workers on the one database" "2" "$workers"

# ------------------------------------------------------------ delete
req DELETE "/items/user%232/profile"
check "DELETE is 204" "204" "$STATUS"
req GET "/items/user%232/profile"
check "... and the item is gone" "404" "$STATUS"
req DELETE "/items/user%232/profile"
check "deleting a missing item is 204 too" "204" "$STATUS"

# ------------------------------------------------------------ stop, reopen
kill -QUIT "$NGINX_PID"
for _ in $(seq 100); do kill -0 "$NGINX_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$NGINX_PID" 2>/dev/null; then
  bad "nginx stops on QUIT"
else
  ok "nginx stops on QUIT"
  NGINX_PID=""
fi
if grep -E '\[(alert|crit|emerg|error)\]' "$T/logs/error.log" >"$T/err"; then
  bad "the error log holds no errors" "$(cat "$T/err")"
else
  ok "the error log holds no errors"
fi
got=$(DB=$T/data/items LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/lua5.4/?.so;;" lua5.4 -e '
  local db = assert(require("dynafile").open(os.getenv("DB"), {readonly = true}))
  local p = db:get_item{PK = "user#1", SK = "profile"}
  local n = 0
  for _ in db:query("load") do n = n + 1 end
  print(p.name, math.type(p.visits), n, db:get_item{PK = "user#2", SK = "profile"})
  db:close()' 2>&1)
check "Lua 5.4 reads what the nginx workers wrote" "$(printf 'Ada\tinteger\t40\tnil')" "$got"

finish
