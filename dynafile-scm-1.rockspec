-- LuaRocks spec for dynafile: an embedded DynamoDB-style database on LMDB.
-- From a checkout, for the Lua version you use (the README's Set-up):
--   luarocks --lua-version=5.4 make --local        (also 5.3, 5.1)
--   luarocks --lua-version=5.1 make --local LUA=/usr/bin/luajit \
--     LUA_INCDIR=/usr/include/luajit-2.1            (LuaJIT)
-- The build is the Makefile's (`make`, then `make install` into the rock
-- tree), so it writes only under build/ and installs every module the
-- checkout has; tests/luarocks.sh runs it for every Lua version.
rockspec_format = "3.0"
package = "dynafile"
version = "scm-1"

source = {
  url = "git+https://git.example.org/dynafile.git",
  branch = "main",
}

description = {
  summary = "Embedded DynamoDB-style database for Lua on LMDB",
  detailed = [[
dynafile stores tables of items with partition and sort keys, secondary
indexes, conditional writes, update expressions, queries in pages,
transactions, streams and TTL expiry in a single LMDB environment, from a
C core with a Lua binding.  Works with Lua 5.1, 5.3, 5.4 and LuaJIT.
The DynamoDB backend, `dynafile copy` and `dynafile serve` also need
lua-cjson, luasocket, luasec and luaossl (see the README); the database
itself needs none of them.
]],
  license = "MIT",
  labels = { "database", "lmdb", "dynamodb" },
}

dependencies = {
  "lua >= 5.1",
}

external_dependencies = {
  LMDB = {
    header = "lmdb.h",
    library = "lmdb",
  },
}

build = {
  type = "make",
  build_target = "all",
  build_variables = {
    LUA = "$(LUA)",
    LUA_CFLAGS = "-I$(LUA_INCDIR)",
    CFLAGS = "$(CFLAGS)",
    EXTRA_CFLAGS = "-I$(LMDB_INCDIR)",
    LDFLAGS = "-L$(LMDB_LIBDIR)",
    WERROR = "",
  },
  install_target = "install",
  install_variables = {
    LUA = "$(LUA)",
    LUA_CFLAGS = "-I$(LUA_INCDIR)",
    CFLAGS = "$(CFLAGS)",
    EXTRA_CFLAGS = "-I$(LMDB_INCDIR)",
    LDFLAGS = "-L$(LMDB_LIBDIR)",
    WERROR = "",
    PREFIX = "$(PREFIX)",
    LUA_CMOD = "$(LIBDIR)",
    LUA_LMOD = "$(LUADIR)",
    BINDIR = "$(BINDIR)",
  },
}
