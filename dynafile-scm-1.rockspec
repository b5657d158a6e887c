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
        "src/lcodec.c",
        "src/lexpr.c",
        "src/ldb.c",
        "src/ldynafile.c",
        "src/lerror.c",
        "src/lopen.c",
        "src/lquery.c",
        "src/ltxn.c",
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
    ["dynafile.db"] = "lua/dynafile/db.lua",
    ["dynafile.errors"] = "lua/dynafile/errors.lua",
    ["dynafile.handle"] = "lua/dynafile/handle.lua",
    ["dynafile.reader"] = "lua/dynafile/reader.lua",
    ["dynafile.cli"] = "lua/dynafile/cli.lua",
    ["dynafile.ddbjson"] = "lua/dynafile/ddbjson.lua",
    ["dynafile.expr"] = "lua/dynafile/expr.lua",
    ["dynafile.json"] = "lua/dynafile/json.lua",
    ["dynafile.types"] = "lua/dynafile/types.lua",
    ["dynafile.update"] = "lua/dynafile/update.lua",
    ["dynafile.serve.api"] = "lua/dynafile/serve/api.lua",
    ["dynafile.serve.auth"] = "lua/dynafile/serve/auth.lua",
    ["dynafile.serve.batch"] = "lua/dynafile/serve/batch.lua",
    ["dynafile.serve.capacity"] = "lua/dynafile/serve/capacity.lua",
    ["dynafile.serve.catalog"] = "lua/dynafile/serve/catalog.lua",
    ["dynafile.serve.cli"] = "lua/dynafile/serve/cli.lua",
    ["dynafile.serve.decimal"] = "lua/dynafile/serve/decimal.lua",
    ["dynafile.serve.errors"] = "lua/dynafile/serve/errors.lua",
    ["dynafile.serve.expressions"] = "lua/dynafile/serve/expressions.lua",
    ["dynafile.serve"] = "lua/dynafile/serve/init.lua",
    ["dynafile.serve.itemjson"] = "lua/dynafile/serve/itemjson.lua",
    ["dynafile.serve.items"] = "lua/dynafile/serve/items.lua",
    ["dynafile.serve.json"] = "lua/dynafile/serve/json.lua",
    ["dynafile.serve.legacy"] = "lua/dynafile/serve/legacy.lua",
    ["dynafile.serve.partiql"] = "lua/dynafile/serve/partiql.lua",
    ["dynafile.serve.reads"] = "lua/dynafile/serve/reads.lua",
    ["dynafile.serve.shape"] = "lua/dynafile/serve/shape.lua",
    ["dynafile.serve.size"] = "lua/dynafile/serve/size.lua",
    ["dynafile.serve.streams"] = "lua/dynafile/serve/streams.lua",
    ["dynafile.serve.sys"] = "lua/dynafile/serve/sys.lua",
    ["dynafile.serve.tables"] = "lua/dynafile/serve/tables.lua",
    ["dynafile.serve.transact"] = "lua/dynafile/serve/transact.lua",
    ["dynafile.serve.values"] = "lua/dynafile/serve/values.lua",
  },
  install = {
    bin = {
      dynafile = "bin/dynafile",
    },
  },
}
