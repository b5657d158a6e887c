-- The dynafile command line, run for real (bin/dynafile under lua5.4).

local dynafile = require "dynafile"

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute("mkdir -p " .. p) )
  return p
end

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local env = 'LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/lua5.4/?.so;;" '

-- Run `dynafile <args>`; returns exit status, stdout, stderr.
local function run(args, stdin)
  local out, err, st = os.tmpname(), os.tmpname(), os.tmpname()
  local cmd = env .. "lua5.4 bin/dynafile"
  for _, a in ipairs(args) do cmd = cmd .. " " .. q(a) end
  cmd = cmd .. " >" .. out .. " 2>" .. err
  if stdin then
    local inp = os.tmpname()
    local f = assert(io.open(inp, "wb"))
    f:write(stdin)
    f:close()
    cmd = cmd .. " <" .. inp
  else
    cmd = cmd .. " </dev/null"
  end
  os.execute("(" .. cmd .. "); echo $? >" .. st)
  local code = tonumber(slurp(st))
  local o, e = slurp(out), slurp(err)
  os.remove(out) os.remove(err) os.remove(st)
  return code, o, e
end

local function lines(s)
  local t = {}
  for l in s:gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

describe("the dynafile command", function()
  local dir

  before_each(function()
    dir = tmpdir()
    local db = assert(dynafile.open(dir, { pk = "PK", sk = "SK", ttl = "exp",
      gsi = { by_type = { pk = "type", sk = "SK" } } }))
    db:put_item({ PK = "user#1", SK = "profile", type = "user", name = "Bob", age = 42 })
    db:put_item({ PK = "user#1", SK = "order#1", type = "order", total = 9.5 })
    db:put_item({ PK = "user#1", SK = "order#2", type = "order", total = 20 })
    db:put_item({ PK = "user#2", SK = "profile", type = "user", name = "Ann", age = 31 })
    db:put_item({ PK = 7, SK = 8, note = "numeric keys" })
    db:close()
  end)

  after_each(function()
    os.execute("rm -rf " .. q(dir))
  end)

  it("prints usage and exits 2 without a command", function()
    local code, out = run({})
    assert.equal(2, code)
    assert.truthy(out:find("usage: dynafile", 1, true))
  end)

  it("rejects an unknown command with exit status 2", function()
    local code, _, err = run({ "frobnicate", dir })
    assert.equal(2, code)
    assert.truthy(err:find("unknown command 'frobnicate'", 1, true))
  end)

  it("has --help for every subcommand", function()
    for _, cmd in ipairs { "info", "get", "query", "scan", "put", "delete", "export",
                           "import", "purge-expired", "check" } do
      local code, out = run({ cmd, "--help" })
      assert.equal(0, code)
      assert.truthy(out:find("usage: dynafile " .. cmd, 1, true), cmd)
    end
  end)

  it("reports an unknown option and missing arguments as usage errors", function()
    local code, _, err = run({ "scan", dir, "--bogus" })
    assert.equal(2, code)
    assert.truthy(err:find("unknown option --bogus", 1, true))
    code, _, err = run({ "get", dir })
    assert.equal(2, code)
    assert.truthy(err:find("missing arguments", 1, true))
    code, _, err = run({ "query", dir, "user#1", "--limit", "0" })
    assert.equal(2, code)
    assert.truthy(err:find("--limit", 1, true))
  end)

  it("fails with status 1 on a directory that holds no database", function()
    local empty = tmpdir()
    local code, out, err = run({ "scan", empty })
    assert.equal(1, code)
    assert.equal("", out)
    assert.truthy(err:find("no dynafile database", 1, true))
    os.execute("rm -rf " .. q(empty))
  end)

  it("info shows the schema, counts and indexes", function()
    local code, out = run({ "info", dir })
    assert.equal(0, code)
    local json = require "dynafile.json"
    local r = json.decode(out)
    assert.equal("PK", r.pk)
    assert.equal("SK", r.sk)
    assert.equal("exp", r.ttl)
    assert.equal(5, r.items)
    assert.equal(3, r.partitions)
    assert.equal("type", r.indexes.by_type.pk)
    assert.is_true(r.size_on_disk > 0)
    assert.is_true(r.map_size > 0)
    code, out = run({ "info", dir, "--table" })
    assert.equal(0, code)
    assert.truthy(out:find("\nitems%s+5\n"))
  end)

  it("get prints one item and fails on a missing one", function()
    local code, out = run({ "get", dir, "user#1", "profile" })
    assert.equal(0, code)
    assert.equal('{"PK":"user#1","SK":"profile","age":42,"name":"Bob","type":"user"}\n', out)
    code, out = run({ "get", dir, "7", "8" })
    assert.equal(0, code)
    assert.equal('{"PK":7,"SK":8,"note":"numeric keys"}\n', out)
    code = run({ "get", dir, '"7"', "8" })
    assert.equal(1, code)
    local err
    code, out, err = run({ "get", dir, "user#9", "profile" })
    assert.equal(1, code)
    assert.equal("", out)
    assert.truthy(err:find("no item", 1, true))
  end)

  it("query follows key conditions, --reverse, --limit, --filter and --index", function()
    local code, out = run({ "query", dir, "user#1", "--begins-with", "order#" })
    assert.equal(0, code)
    local l = lines(out)
    assert.equal(2, #l)
    assert.truthy(l[1]:find('"SK":"order#1"', 1, true))
    code, out = run({ "query", dir, "user#1", "--reverse", "--limit", "1" })
    assert.equal(0, code)
    l = lines(out)
    assert.equal(1, #l)
    assert.truthy(l[1]:find('"SK":"profile"', 1, true))
    code, out = run({ "query", dir, "user#1", "--filter", "total > 10" })
    assert.equal(0, code)
    l = lines(out)
    assert.equal(1, #l)
    assert.truthy(l[1]:find('"total":20', 1, true))
    code, out = run({ "query", dir, "order", "--index", "by_type" })
    assert.equal(0, code)
    assert.equal(2, #lines(out))
  end)

  it("query reports a filter that does not parse, with its column", function()
    local code, out, err = run({ "query", dir, "user#1", "--filter", "total >" })
    assert.equal(1, code)
    assert.equal("", out)
    assert.truthy(err:find("column", 1, true))
  end)

  it("query --table prints aligned columns with the keys first", function()
    local code, out = run({ "query", dir, "user#1", "--begins-with", "order#", "--table" })
    assert.equal(0, code)
    local l = lines(out)
    assert.equal(4, #l)
    assert.truthy(l[1]:find("^PK%s+SK%s+"))
    assert.truthy(l[2]:find("^%-%-%-"))
    -- columns line up: SK starts at the same offset on every line
    local col = l[1]:find("SK")
    assert.equal("order#1", l[3]:sub(col, col + 6))
    assert.equal("order#2", l[4]:sub(col, col + 6))
  end)

  it("scan prints every item; --segment K/N splits them disjointly", function()
    local code, out = run({ "scan", dir })
    assert.equal(0, code)
    assert.equal(5, #lines(out))
    local seen, total = {}, 0
    for k = 1, 3 do
      code, out = run({ "scan", dir, "--segment", k .. "/3" })
      assert.equal(0, code)
      for _, line in ipairs(lines(out)) do
        assert.is_nil(seen[line])
        seen[line] = true
        total = total + 1
      end
    end
    assert.equal(5, total)
    code = run({ "scan", dir, "--segment", "4" })
    assert.equal(2, code)
  end)

  it("put writes an item with integers kept as integers, delete removes it", function()
    local code = run({ "put", dir, '{"PK":"p","SK":"s","n":3,"f":3.0,"l":[1,{"a":null}]}' })
    assert.equal(0, code)
    local db = assert(dynafile.open(dir))
    local item = db:get_item({ PK = "p", SK = "s" })
    assert.equal(3, item.n)
    assert.equal(3.0, item.f)
    if math.type then
      assert.equal("integer", math.type(item.n))
      assert.equal("float", math.type(item.f))
    end
    assert.equal(dynafile.null, item.l[2].a)
    db:close()
    code = run({ "delete", dir, "p", "s" })
    assert.equal(0, code)
    db = assert(dynafile.open(dir))
    assert.is_nil(db:get_item({ PK = "p", SK = "s" }))
    db:close()
  end)

  it("put refuses bad JSON and items without keys, leaving the database as it was", function()
    local _, before = run({ "export", dir })
    local code, _, err = run({ "put", dir, '{"PK":"p",' })
    assert.equal(1, code)
    assert.truthy(err:find("invalid JSON", 1, true))
    code, _, err = run({ "put", dir, '{"PK":"p"}' })
    assert.equal(1, code)
    assert.truthy(err:find("SK", 1, true))
    local _, after = run({ "export", dir })
    assert.equal(before, after)
  end)

  it("export, import and export again are byte-identical (JSON Lines)", function()
    local code, first = run({ "export", dir })
    assert.equal(0, code)
    local other = tmpdir()
    os.execute("rm -rf " .. q(other))
    code = run({ "import", other, "-" }, first)
    assert.equal(0, code)
    local second
    code, second = run({ "export", other })
    assert.equal(0, code)
    assert.equal(first, second)
    os.execute("rm -rf " .. q(other))
  end)

  it("export, import and export again are byte-identical (DynamoDB JSON)", function()
    local code, first = run({ "export", dir, "--format", "dynamodb" })
    assert.equal(0, code)
    assert.truthy(first:find('{"Item":{"PK":{"S":"user#1"}', 1, true))
    assert.truthy(first:find('"total":{"N":"9.5"}', 1, true))
    local other = tmpdir()
    os.execute("rm -rf " .. q(other))
    code = run({ "import", other, "-", "--format", "dynamodb" }, first)
    assert.equal(0, code)
    local second
    code, second = run({ "export", other, "--format", "dynamodb" })
    assert.equal(0, code)
    assert.equal(first, second)
    os.execute("rm -rf " .. q(other))
  end)

  it("keeps strings that are not UTF-8 through a round trip", function()
    local db = assert(dynafile.open(dir))
    db:put_item({ PK = "bin", SK = "x", raw = "\255\0\1abc" })
    db:close()
    local _, first = run({ "export", dir })
    assert.truthy(first:find('"$b64"', 1, true))
    local other = tmpdir()
    os.execute("rm -rf " .. q(other))
    assert.equal(0, (run({ "import", other, "-" }, first)))
    local db2 = assert(dynafile.open(other))
    assert.equal("\255\0\1abc", db2:get_item({ PK = "bin", SK = "x" }).raw)
    db2:close()
    os.execute("rm -rf " .. q(other))
  end)

  it("import stops at a bad line, says where, and keeps the batches before it", function()
    local other = tmpdir()
    os.execute("rm -rf " .. q(other))
    local input = table.concat({
      '{"PK":"a","SK":"1"}',
      '{"PK":"a","SK":"2"}',
      '{"PK":"a","SK":"3"}',
      '{"PK":"a","SK":"4"}',
      '{"PK":"a"',
      '{"PK":"a","SK":"6"}',
    }, "\n") .. "\n"
    local code, _, err = run({ "import", other, "-", "--batch", "2" }, input)
    assert.equal(1, code)
    assert.truthy(err:find("line 5", 1, true))
    assert.truthy(err:find("4 items were imported", 1, true))
    local db = assert(dynafile.open(other))
    local n = 0
    for _ in db:scan() do n = n + 1 end
    assert.equal(4, n)
    db:close()
    os.execute("rm -rf " .. q(other))
  end)

  it("import rejects an item without its key and writes nothing of that batch", function()
    local other = tmpdir()
    os.execute("rm -rf " .. q(other))
    local input = '{"PK":"a","SK":"1"}\n{"PK":"a"}\n'
    local code, _, err = run({ "import", other, "-", "--pk", "PK", "--sk", "SK" }, input)
    assert.equal(1, code)
    assert.truthy(err:find("line 2", 1, true))
    local db = assert(dynafile.open(other))
    local n = 0
    for _ in db:scan() do n = n + 1 end
    assert.equal(1, n) -- the line before was flushed, the bad one never written
    db:close()
    os.execute("rm -rf " .. q(other))
  end)

  it("import creates a pk-only database with --no-sk", function()
    local other = tmpdir()
    os.execute("rm -rf " .. q(other))
    local code = run({ "import", other, "-", "--pk", "id", "--no-sk" }, '{"id":1,"v":"x"}\n')
    assert.equal(0, code)
    local db = assert(dynafile.open(other))
    assert.equal("x", db:get_item({ id = 1 }).v)
    assert.is_nil(db:schema().sk)
    db:close()
    os.execute("rm -rf " .. q(other))
  end)

  it("create makes an empty database, with the default keys or the ones given", function()
    local other = tmpdir()
    os.execute("rm -rf " .. q(other))
    local code, out, err = run({ "create", other })
    assert.equal(0, code, err)
    assert.equal('{"dir":"' .. other .. '","pk":"PK","sk":"SK"}\n', out)
    code = run({ "put", other, '{"PK":"a","SK":1,"v":2}' })
    assert.equal(0, code)
    code, out = run({ "get", other, "a", "1" })
    assert.equal(0, code)
    assert.truthy(out:find('"v":2', 1, true))
    local _
    code, _, err = run({ "create", other })
    assert.equal(1, code)
    assert.matches("a database exists here already", err, 1, true)
    local third = other .. "-keys"
    code = run({ "create", third, "--pk", "id", "--no-sk", "--ttl", "exp" })
    assert.equal(0, code)
    local db = assert(dynafile.open(third))
    assert.same({ pk = "id", ttl = "exp", indexes = {} }, db:schema())
    db:close()
    code = run({ "create", third .. "x", "--sk", "s", "--no-sk" })
    assert.equal(2, code)
    os.execute("rm -rf " .. q(other) .. " " .. q(third))
  end)

  it("put into a directory without a database says how to make one", function()
    local other = tmpdir() .. "/none"
    local code, _, err = run({ "put", other, '{"PK":"a","SK":1}' })
    assert.equal(1, code)
    assert.matches("no dynafile database here (make one with: dynafile create", err, 1, true)
  end)

  it("purge-expired deletes items whose TTL has passed", function()
    local db = assert(dynafile.open(dir))
    -- one batch: write paths purge expired items opportunistically, so a
    -- later single put would already have removed the old one
    assert(db:batch_write(function(w)
      w:put_item({ PK = "s", SK = "old", exp = os.time() - 1000 })
      w:put_item({ PK = "s", SK = "new", exp = os.time() + 3600 })
    end))
    db:close()
    local code, out = run({ "purge-expired", dir })
    assert.equal(0, code)
    assert.equal('{"purged":1}\n', out)
    db = assert(dynafile.open(dir))
    local n = 0
    for _ in db:query("s") do n = n + 1 end
    assert.equal(1, n)
    db:close()
  end)

  it("check reports a healthy database with exit status 0", function()
    local code, out = run({ "check", dir })
    assert.equal(0, code)
    local json = require "dynafile.json"
    local r = json.decode(out)
    assert.is_true(r.ok)
    assert.equal(5, r.items)
    assert.equal(4, r.index_entries)
    assert.equal(0, r.missing_index)
    assert.equal(0, r.stale_index)
  end)
end)
