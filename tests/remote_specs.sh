#!/usr/bin/env bash
# remote_specs.sh -- the public-API specs against the DynamoDB backend (run
# by make test), once per server: dynalite (tests/js) and `dynafile serve`
# (tests/js/serve-server.js, the LuaJIT build of this checkout), each on a
# free 127.0.0.1 port; every spec file runs through
# spec/support/remote_backend.lua (tests/remote_specs.lua).  What is left
# out, and why (for all servers or one), is spec/support/remote_skips.lua.
# The last line is "N passed, N failed", both runs counted.  Spec files
# given as arguments restrict the runs to them; REMOTE_SERVERS="serve"
# (or "dynalite") runs one server only:
#   bash tests/remote_specs.sh spec/query_spec.lua
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
T=$(mktemp -d /tmp/dynafile-remote-specs.XXXXXX) || exit 1
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
PASS=0
FAIL=0

# the run's "N passed, N failed" line, added to the totals
count() {
  local line
  line=$(tail -n 1 "$1")
  case "$line" in
    *" passed, "*" failed")
      PASS=$((PASS + ${line%% passed*}))
      line=${line#* passed, }
      FAIL=$((FAIL + ${line%% failed*})) ;;
    *) echo "FAIL $2: no summary line"; FAIL=$((FAIL + 1)) ;;
  esac
}

# run_against NAME COMMAND... -- start a server with COMMAND (which prints
# "PORT PID" once it answers), run the specs against it, stop it
run_against() {
  local name=$1 port
  shift
  rm -f "$T/srv.fifo"
  mkfifo "$T/srv.fifo"
  # (the ASan runtime make test may preload is not for node)
  env -u LD_PRELOAD -u ASAN_OPTIONS "$@" >"$T/srv.fifo" 2>"$T/$name.err" &
  local starter=$!
  read -r port SERVER_PID <"$T/srv.fifo" || true
  if [ -z "${port:-}" ]; then
    echo "FAIL $name did not start: $(cat "$T/$name.err")"
    FAIL=$((FAIL + 1))
    wait "$starter" 2>/dev/null
    SERVER_PID=""
    return
  fi
  # the starting script itself (serve-server.js stops the server on TERM)
  SERVER_PID=$starter
  echo "== the specs against $name on 127.0.0.1:$port"
  lua5.4 tests/remote_specs.lua "$name" "http://127.0.0.1:$port" lua5.4 "${SPECS[@]}" \
    | tee "$T/$name.out"
  count "$T/$name.out" "$name"
  kill "$SERVER_PID" 2>/dev/null
  wait "$SERVER_PID" 2>/dev/null
  SERVER_PID=""
}

SPECS=("$@")
SERVERS=${REMOTE_SERVERS:-dynalite serve}
if ! [ -d tests/js/node_modules/dynalite ] || ! command -v node >/dev/null 2>&1; then
  echo "FAIL node or tests/js/node_modules is not installed (make js-deps)"
  echo "0 passed, 1 failed"
  exit 1
fi
${MAKE:-make} --no-print-directory -s LUA=lua5.4 all >"$T/build.log" 2>&1 ||
  { cat "$T/build.log"; echo "0 passed, 1 failed"; exit 1; }
for server in $SERVERS; do
  case "$server" in
    dynalite) run_against dynalite node tests/js/dynalite-server.js ;;
    serve)
      # dynafile serve runs the LuaJIT module in nginx workers
      if ${MAKE:-make} --no-print-directory -s LUA=luajit all >"$T/build-jit.log" 2>&1; then
        run_against serve node tests/js/serve-server.js
      else
        cat "$T/build-jit.log"
        echo "FAIL serve: the LuaJIT module did not build"
        FAIL=$((FAIL + 1))
      fi ;;
    *) echo "FAIL unknown server $server"; FAIL=$((FAIL + 1)) ;;
  esac
done
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
