#!/bin/sh
# setup.sh -- install Tarantool (Debian's `tarantool`, 2.6 on Debian 12)
# for the write benchmark's bulk-load peer (bench/writes.lua), when it is
# missing.  Run by the benchmark itself, never by `make test`: the
# package registers itself as the system's `lua` (the lua-interpreter
# alternative), so the alternative is put back as it was afterwards.
# Prints the tarantool version; exits non-zero when it cannot be had.
set -u
if command -v tarantool >/dev/null 2>&1; then
  tarantool --version | head -n 1
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "tarantool is missing and this is not root (no sudo)" >&2
    exit 1
  fi
fi
before=$(readlink /etc/alternatives/lua-interpreter 2>/dev/null || true)
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -q tarantool >/dev/null 2>&1 ||
  { $SUDO apt-get update -q >/dev/null 2>&1 &&
    $SUDO apt-get install -y -q tarantool >/dev/null 2>&1; } ||
  { echo "apt-get could not install tarantool" >&2; exit 1; }
if [ -n "$before" ] && [ "$(readlink /etc/alternatives/lua-interpreter)" != "$before" ]; then
  $SUDO update-alternatives --set lua-interpreter "$before" >/dev/null 2>&1 || true
fi
tarantool --version | head -n 1
