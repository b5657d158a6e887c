#!/bin/sh
# install-deps.sh -- install the Debian 12 (bookworm) packages dynafile needs.
#
# Idempotent: every package is checked with dpkg-query first; when all are
# present nothing is printed and apt is never touched.  When something is
# missing, `apt-get update` runs once, then one `apt-get install` for the
# missing packages only.  Runs apt through sudo when not root (if sudo exists).
#
#   sh scripts/install-deps.sh          install what is missing for
#                                       `make test` (everything below)
#   sh scripts/install-deps.sh --build  only what `make` and `make demo`
#                                       need (a C compiler, LMDB, Lua 5.4)
#   sh scripts/install-deps.sh --docs   only what `make docs` needs
#   sh scripts/install-deps.sh --bench  only what `make bench` adds
#   ... --list                          print the package list and exit
#   ... --check                         exit 1 (listing them) if any is missing
#
# Note: luajit2 (OpenResty's LuaJIT) is used on purpose, never the `luajit`
# package, which conflicts with nginx's Lua module (libnginx-mod-http-lua).
set -eu

# `make`, `make demo`, `make install`: build the module for Lua 5.4 and run
# the examples.
BUILD_PACKAGES="
  gcc libc6-dev make pkg-config
  liblmdb-dev
  lua5.4 liblua5.4-dev
"
# `make test`: every suite, on every Lua version (the build packages too).
PACKAGES="
  $BUILD_PACKAGES
  lmdb-utils
  lua5.3 liblua5.3-dev
  lua5.1 liblua5.1-0-dev
  luajit2 libluajit2-5.1-dev
  lua-cjson lua-busted
  lua-dbi-sqlite3
  strace util-linux-extra
  nginx-light libnginx-mod-http-lua curl
  clang libclang-rt-14-dev valgrind lua-check
  cppcheck clang-format
  lua-luaossl awscli wrk
  lua-socket lua-sec libssl-dev
  luarocks
"
# What each group is for:
#   gcc libc6-dev make pkg-config   C toolchain (libc6-dev is only a Recommends
#                                   of gcc, and we install without recommends)
#   liblmdb-dev lmdb-utils          the storage engine; mdb_stat/mdb_dump (tests)
#   lua*/liblua*-dev luajit2 ...    interpreters and headers the module builds for
#   lua-cjson                       JSON for the Lua layer (all Lua versions)
#   lua-busted                      the Lua spec runner (/usr/bin/busted)
#   lua-dbi-sqlite3                 SQLite baseline for the benchmarks
#   strace                          crash / process tests
#   util-linux-extra                fincore: the page-cache residency that
#                                   spec/prefetch_spec.lua watches
#   nginx-light libnginx-mod-http-lua curl   OpenResty-style integration test
#   clang libclang-rt-14-dev valgrind lua-check   sanitizers, leak checks, lint
#   cppcheck clang-format           make lint (static checks, formatting)
#   lua-luaossl                     HMAC-SHA256 for `dynafile serve --auth` (SigV4)
#                                   and for the DynamoDB backend's signing
#   lua-socket lua-sec              the DynamoDB backend's HTTP(S) outside nginx
#   libssl-dev                      libcrypto 3's headers: make builds the signer's
#                                   SHA-256/HMAC module (dynafile.remote.crypto);
#                                   without them the signer uses luaossl
#   luarocks                        tests/luarocks.sh: `luarocks make` for every Lua
#   awscli wrk                      serve's tests (the AWS CLI) and `make bench-serve`
#   nodejs npm                      the JavaScript test clients in tests/js (AWS SDK
#                                   v3, dynalite), added only when the `node` or
#                                   `npm` command is missing: Debian's npm conflicts
#                                   with the nodejs of other distributors
#                                   (nodesource), which brings its own npm

# `make docs` only (not needed to build or test): LDoc and the Markdown
# formatter it uses, installed on demand with --docs.
DOC_PACKAGES="lua5.1 lua-ldoc lua-markdown"
# `make bench` only: the original Python dynafile, a peer of bench/reads.lua,
# runs on Debian's python3 with these two libraries.
BENCH_PACKAGES="python3 python3-sortedcontainers python3-atomicwrites"
GROUP=test
case "${1:-}" in
  --build) PACKAGES=$BUILD_PACKAGES; GROUP=build; shift ;;
  --docs) PACKAGES=$DOC_PACKAGES; GROUP=docs; shift ;;
  --bench) PACKAGES=$BENCH_PACKAGES; GROUP=bench; shift ;;
esac

# node and npm, for the tests: Debian's packages only when the commands
# are missing (a nodejs from elsewhere, such as nodesource's, includes npm
# and conflicts with Debian's npm package).
if [ "$GROUP" = test ]; then
  command -v node >/dev/null 2>&1 || PACKAGES="$PACKAGES nodejs"
  command -v npm >/dev/null 2>&1 || PACKAGES="$PACKAGES npm"
fi

case "${1:-}" in
  --list) for p in $PACKAGES; do echo "$p"; done; exit 0 ;;
  --check|"") ;;
  *) echo "usage: $0 [--build|--docs|--bench] [--list|--check]" >&2; exit 2 ;;
esac

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "install-deps: no dpkg-query: not a Debian system; install these" \
       "(or your distribution's equivalents) by hand:" $PACKAGES >&2
  exit 0
fi

missing=""
for p in $PACKAGES; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  case "$status" in
    *" ok installed") ;;
    *) missing="$missing $p" ;;
  esac
done

[ -z "$missing" ] && exit 0

if [ "${1:-}" = "--check" ]; then
  echo "install-deps: missing:$missing" >&2
  exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "install-deps: not root and no sudo; please install:$missing" >&2
    exit 1
  fi
fi

echo "install-deps: installing:$missing"

# Keep package maintainer scripts from starting services (nginx would
# otherwise try to bind port 80, also inside a chroot).  Only when the
# machine has no policy of its own; removed again on exit.
POLICY=/usr/sbin/policy-rc.d
made_policy=""
cleanup() {
  if [ -n "$made_policy" ]; then $SUDO rm -f "$POLICY"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
  $SUDO chmod 0755 "$POLICY"
  made_policy=1
fi

export DEBIAN_FRONTEND=noninteractive
APT_OPTS="-q -y -o Dpkg::Use-Pty=0 -o APT::Install-Recommends=false"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -q -o Dpkg::Use-Pty=0 update
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get $APT_OPTS install $missing \
  </dev/null

# Verify: an install that "succeeded" but left something out is an error.
still=""
for p in $missing; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  case "$status" in
    *" ok installed") ;;
    *) still="$still $p" ;;
  esac
done
if [ -n "$still" ]; then
  echo "install-deps: still missing after apt-get install:$still" >&2
  exit 1
fi
echo "install-deps: done"
