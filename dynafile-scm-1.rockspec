-- LuaRocks spec for dynafile: an embedded DynamoDB-style database on LMDB.
--   luarocks make                   (from a checkout; add --local or --tree)
--   luarocks --lua-version=5.4 make
-- Every src/*.c and lua/dynafile/*.lua must be listed below;
-- scripts/run-tests.sh checks that (suite "rockspec: sources").
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
]],
  license = "MIT",
  labels = { "database", "lmdb", "dynamodb" },
}

dependencies = {
  "lua >= 5.1",
  "lua-cjson",
}

external_dependencies = {
  LMDB = {
    header = "lmdb.h",
    library = "lmdb",
  },
}

build = {
  type = "builtin",
  modules = {
    ["dynafile.core"] = {
      sources = {
        "src/alloc.c",
        "src/check.c",
        "src/codec.c",
        "src/crc32c.c",
        "src/db.c",
        "src/ddbexpr.c",
        "src/decimal.c",
        "src/ddl.c",
        "src/env.c",
        "src/error.c",
        "src/expr.c",
        "src/handle.c",
        "src/index.c",
        "src/item.c",
        "src/key.c",
        "src/kv.c",
        "src/ldynafile.c",
        "src/query.c",
        "src/regex.c",
        "src/redo.c",
        "src/schema.c",
        "src/stream.c",
        "src/ttl.c",
        "src/txn.c",
        "src/update.c",
      },
      defines = { "_GNU_SOURCE" },
      incdirs = { "src", "$(LMDB_INCDIR)" },
      libdirs = { "$(LMDB_LIBDIR)" },
      libraries = { "lmdb", "pthread", "m" },
    },
    ["dynafile"] = "lua/dynafile/init.lua",
    ["dynafile.batch"] = "lua/dynafile/batch.lua",
    ["dynafile.cli"] = "lua/dynafile/cli.lua",
    ["dynafile.ddbjson"] = "lua/dynafile/ddbjson.lua",
    ["dynafile.expr"] = "lua/dynafile/expr.lua",
    ["dynafile.json"] = "lua/dynafile/json.lua",
    ["dynafile.types"] = "lua/dynafile/types.lua",
    ["dynafile.update"] = "lua/dynafile/update.lua",
  },
  install = {
    bin = {
      dynafile = "bin/dynafile",
    },
  },
}
