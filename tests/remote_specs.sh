#!/usr/bin/env bash
# remote_specs.sh -- the public-API specs against the DynamoDB backend (run
# by make test): dynalite (tests/js) on a free 127.0.0.1 port, every spec
# file through spec/support/remote_backend.lua (tests/remote_specs.lua).
# What is left out, and why, is spec/support/remote_skips.lua.  The last
# line is "N passed, N failed".  Spec files given as arguments restrict the
# run to them (bash tests/remote_specs.sh spec/query_spec.lua).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
T=$(mktemp -d /tmp/dynafile-remote-specs.XXXXXX) || exit 1
DL_PID=""
cleanup() {
  [ -n "$DL_PID" ] && kill "$DL_PID" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if ! [ -d tests/js/node_modules/dynalite ] || ! command -v node >/dev/null 2>&1; then
  echo "FAIL dynalite is not installed (make js-deps)"
  echo "0 passed, 1 failed"
  exit 1
fi
${MAKE:-make} --no-print-directory -s LUA=lua5.4 all >"$T/build.log" 2>&1 ||
  { cat "$T/build.log"; echo "0 passed, 1 failed"; exit 1; }
mkfifo "$T/dl.fifo"
node tests/js/dynalite-server.js >"$T/dl.fifo" 2>"$T/dl.err" &
read -r DL_PORT DL_PID <"$T/dl.fifo" || true
if [ -z "${DL_PORT:-}" ]; then
  echo "FAIL dynalite did not start: $(cat "$T/dl.err")"
  echo "0 passed, 1 failed"
  exit 1
fi
echo "== the specs against dynalite on 127.0.0.1:$DL_PORT"
lua5.4 tests/remote_specs.lua dynalite "http://127.0.0.1:$DL_PORT" lua5.4 "$@"
