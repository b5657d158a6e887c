#!/bin/sh
# js-deps.sh -- install the JavaScript test clients pinned in tests/js
# (package.json + package-lock.json: the AWS SDK for JavaScript v3 and
# dynalite) with `npm ci`, when they are missing or out of date.
#
# Idempotent: nothing happens when tests/js/node_modules was installed from
# the current package-lock.json (npm keeps a copy of it there).  Needs the
# `node` and `npm` commands (scripts/install-deps.sh installs Debian's when
# they are missing) and the npm registry.
#
#   sh scripts/js-deps.sh           install when needed
#   sh scripts/js-deps.sh --check   exit 1 when an install is needed
set -eu
cd "$(dirname "$0")/../tests/js"

for cmd in node npm; do
  if ! command -v "$cmd" >/dev/null 2>&1; then
    echo "js-deps: no $cmd command: run scripts/install-deps.sh" \
         "(Debian packages nodejs and npm)" >&2
    exit 1
  fi
done

# node_modules/.package-lock.json is npm's record of what it installed:
# it matches package-lock.json exactly after `npm ci`, apart from the
# top-level entry npm leaves out.
installed() {
  [ -f node_modules/.package-lock.json ] || return 1
  node -e '
    const want = require("./package-lock.json").packages;
    const have = require("./node_modules/.package-lock.json").packages;
    for (const [k, v] of Object.entries(want)) {
      if (k === "") continue;
      if (!have[k] || have[k].version !== v.version) process.exit(1);
    }
  ' 2>/dev/null
}

if installed; then exit 0; fi
if [ "${1:-}" = "--check" ]; then
  echo "js-deps: tests/js/node_modules is missing or out of date" >&2
  exit 1
fi
echo "js-deps: npm ci in tests/js"
npm ci --no-audit --no-fund --loglevel=error
