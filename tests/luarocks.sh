#!/usr/bin/env bash
# luarocks.sh -- `luarocks make`, as the README gives it, works for every
# supported Lua version: it installs the module and every Lua file of the
# checkout into a fresh tree, `require "dynafile"` from that tree opens a
# database and writes, the `dynafile` command runs (Lua 5.4), and the
# build leaves nothing in the checkout outside build/ (an earlier rockspec
# left a dynafile/core.so that `lua5.4` then picked up from the checkout).
# The build reuses build/<lua>/ when it is up to date.  The last line is
# "N passed, N failed".
set -u
ROOT=${DYNAFILE_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$ROOT" || exit 1
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dynafile-luarocks.XXXXXX") || exit 1
trap 'rm -rf "$WORK"' EXIT

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok    $*"; }
bad() { fail=$((fail + 1)); echo "FAIL  $*"; }

if ! command -v luarocks >/dev/null 2>&1; then
  echo "luarocks is not installed (scripts/install-deps.sh installs it)"
  echo "0 passed, 1 failed"
  exit 1
fi

# Files outside build/ that git does not know of, before and after.
untracked() {
  if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
    git -C "$ROOT" status --porcelain --untracked-files=all --ignored 2>/dev/null |
      grep -v -E '^(!!|\?\?) (build/|tests/js/node_modules/)' | sort
  fi
}
untracked >"$WORK/before"

# name | luarocks options | variables for make | interpreter
while IFS='|' read -r name args vars interp; do
  tree="$WORK/tree-$name"
  # shellcheck disable=SC2086
  if ! luarocks $args --tree="$tree" make $vars >"$WORK/log-$name" 2>&1; then
    tail -n 20 "$WORK/log-$name"
    bad "$name: luarocks make"
    continue
  fi
  ok "$name: luarocks make"
  # shellcheck disable=SC2086
  if (eval "$(luarocks $args --tree="$tree" path 2>/dev/null)" && cd "$WORK" &&
      TREE=$tree "$interp" -e '
        local dynafile = require "dynafile"
        local from
        for t in package.cpath:gmatch("[^;]+") do
          local f = io.open((t:gsub("%?", "dynafile/core")), "rb")
          if f then f:close() from = t break end
        end
        assert(from and from:find(os.getenv("TREE"), 1, true),
          "dynafile.core came from " .. tostring(from))
        local dir = os.tmpname() os.remove(dir)
        local db = assert(dynafile.open(dir))
        assert(db:put_item { PK = "a", SK = 1, v = "x" })
        assert(db:get_item({ PK = "a", SK = 1 }).v == "x")
        assert(require("dynafile.remote.db"))
        db:close()
        os.execute("rm -rf " .. dir)' >"$WORK/run-$name" 2>&1); then
    ok "$name: require \"dynafile\" from the installed tree"
  else
    cat "$WORK/run-$name"
    bad "$name: require \"dynafile\" from the installed tree"
  fi
done <<EOF
lua5.4|--lua-version=5.4||lua5.4
lua5.3|--lua-version=5.3||lua5.3
lua5.1|--lua-version=5.1||lua5.1
luajit|--lua-version=5.1|LUA=/usr/bin/luajit LUA_INCDIR=/usr/include/luajit-2.1|luajit
EOF

if "$WORK/tree-lua5.4/bin/dynafile" --help 2>&1 | grep -q "^usage: dynafile"; then
  ok "the dynafile command of the 5.4 tree runs"
else
  bad "the dynafile command of the 5.4 tree runs"
fi

untracked >"$WORK/after"
if cmp -s "$WORK/before" "$WORK/after"; then
  ok "nothing left in the checkout outside build/"
else
  diff "$WORK/before" "$WORK/after"
  bad "nothing left in the checkout outside build/"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
