-- Databases written by the release before format 2 (tests/fixtures/v1,
-- made by tests/fixtures/make_v1.lua with dynafile 0.1.0) open without
-- loss: the first writable open upgrades them in place, after which every
-- item, index entry and TTL entry is where this release puts it.
local dynafile = require "dynafile"
local json = require "dynafile.json"
local support = dofile("spec/support/fs.lua")

local function read_lines(path)
  local out = {}
  for l in io.lines(path) do out[#out + 1] = l end
  table.sort(out)
  return out
end

-- Every item as `dynafile export` writes it (JSON Lines), sorted.
local function export(db)
  local out = {}
  for it in db:scan() do out[#out + 1] = json.encode(it) end
  table.sort(out)
  return out
end

-- A value as text, the same on every Lua version: numbers by their
-- DynamoDB digits, strings (and the binaries format 1 exported as B) by
-- their bytes, lists and maps in key order.
local function canon(v)
  local t = dynafile.type(v)
  if t == "M" or t == "L" then
    local parts = {}
    for k, x in pairs(v) do parts[#parts + 1] = tostring(k) .. "=" .. canon(x) end
    table.sort(parts)
    return "{" .. table.concat(parts, ",") .. "}"
  end
  if t == "N" then return "N:" .. dynafile.number_string(v) end
  if t == "S" then return "S:" .. v end
  return t .. ":" .. tostring(v)
end

-- The same from format 1's DynamoDB JSON export.
local function canon_ddb(av)
  local k, v = next(av)
  if k == "N" then -- (beyond DynamoDB's range: a Lua float, as stored)
    local ok, d = pcall(dynafile.decimal, v)
    return "N:" .. (ok and tostring(d) or dynafile.number_string(tonumber(v)))
  end
  if k == "S" then return "S:" .. v end
  if k == "B" then return "S:" .. require("dynafile.ddbjson").base64_decode(v) end
  if k == "BOOL" then return "BOOL:" .. tostring(v) end
  if k == "NULL" then return "NULL:" .. tostring(dynafile.null) end
  local parts = {}
  for kk, x in pairs(v) do parts[#parts + 1] = tostring(kk) .. "=" .. canon_ddb(x) end
  table.sort(parts)
  return "{" .. table.concat(parts, ",") .. "}"
end

local function canon_items(db)
  local out = {}
  for it in db:scan() do out[#out + 1] = canon(it) end
  table.sort(out)
  return out
end

local function canon_expected(name)
  local out = {}
  for l in io.lines("tests/fixtures/v1/" .. name .. ".expected.ddb.jsonl") do
    out[#out + 1] = canon_ddb({ M = json.decode(l).Item })
  end
  table.sort(out)
  return out
end

local HAS_INTEGERS = math.type ~= nil

local function copy_fixture(name)
  local dir = support.tmpdir()
  assert(os.execute("mkdir -p '" .. dir .. "' && cp -r tests/fixtures/v1/" .. name ..
    "/. '" .. dir .. "/'"))
  return dir
end

describe("a format-1 database", function()
  after_each(function() support.cleanup() end)

  it("opened read-only says it needs one writable open", function()
    local dir = copy_fixture("main")
    local db, msg, code = dynafile.open(dir, { readonly = true })
    assert.is_nil(db)
    assert.equal("VersionMismatch", code)
    assert.matches("older dynafile (format 1", msg, 1, true)
    assert.matches("open it once without readonly", msg, 1, true)
  end)

  it("upgrades in place and holds exactly what it held", function()
    for _, name in ipairs({ "main", "kv" }) do
      local dir = copy_fixture(name)
      local db = assert(dynafile.open(dir))
      assert.same(canon_expected(name), canon_items(db))
      if HAS_INTEGERS then -- JSON Lines keep integers and floats apart
        assert.same(read_lines("tests/fixtures/v1/" .. name .. ".expected.jsonl"), export(db))
      end
      assert.is_true(db:check().ok)
      db:close()
      -- upgraded for good: read-only handles open it, a reopen changes nothing
      db = assert(dynafile.open(dir, { readonly = true }))
      assert.same(canon_expected(name), canon_items(db))
      db:close()
    end
  end)

  it("answers every read the way this release orders keys", function()
    local dir = copy_fixture("main")
    local db = assert(dynafile.open(dir))
    -- numbers before strings, a NUL-holding key, the empty key
    local sks = {}
    for it in db:query("user#2") do sks[#sks + 1] = it.SK end
    assert.same({ -7, 42, 42.5, "", "a\0b\0c" }, sks)
    -- exact numbers kept through the upgrade
    local it = db:get_item { PK = "user#2", SK = 42 }
    if math.type then
      assert.equal(math.maxinteger, it.n)
      assert.equal(math.mininteger, it.m)
      assert.equal(math.tointeger(2 ^ 53) + 1, it.big)
      assert.equal("float", math.type(it.f))
    end
    assert.equal(5e-324, it.tiny)
    -- a numeric partition key and a long (hashed) one
    assert.equal(1, db:get_item({ PK = 17, SK = "numeric partition" }).score)
    assert.equal("long partition key",
      db:get_item({ PK = string.rep("p", 300), SK = "x" }).note)
    -- the indexes, rebuilt: every projection, both kinds
    local n = 0
    for _ in db:query("bulk", { index = "by_type" }) do n = n + 1 end
    assert.equal(199, n)
    local orders = {}
    for o in db:query("red", { index = "by_tag" }) do orders[#orders + 1] = o.score end
    assert.same({ -3.25, 7 }, orders)
    local scores = {}
    for o in db:query("user#1", { index = "by_score" }) do scores[#scores + 1] = o.score end
    assert.same({ -3.25, 7 }, scores)
    -- TTL: the live session is there, and expires on time
    assert.is_table(db:get_item { PK = "session#1", SK = "s" })
    db:close()
    db = assert(dynafile.open(dir, { clock = function() return 4102444801 end }))
    assert.is_nil(db:get_item { PK = "session#1", SK = "s" })
    assert.equal(1, db:purge_expired())
    db:close()
  end)

  it("keeps its change log readable and writable", function()
    local dir = copy_fixture("main")
    local db = assert(dynafile.open(dir))
    local before = db:stat()
    assert.is_true(before.stream_last > 0)
    assert(db:put_item { PK = "after", SK = "upgrade", n = 1 })
    assert.equal(before.stream_last + 1, db:stat().stream_last)
    db:close()
  end)
end)
