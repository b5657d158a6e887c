-- Number keys beyond 2^53 are one key whichever Lua wrote them (issue 16):
-- a float that is an integer in the int64 range is that integer, so the
-- float 2^60 and the integer 1 << 60 (5.3+), the int64_t cdata 1LL << 60
-- (LuaJIT) and the decimal 1152921504606846976 find, update, condition
-- and delete one item, on the table and through its indexes; a database
-- written by the format-1 release under Lua 5.1 (tests/fixtures/v1/bigkeys,
-- keyed by integers) and one written by the format-3 release under Lua 5.4
-- (tests/fixtures/v3/bigkeys, floats keyed by their shortest decimal) are
-- found from every Lua after the upgrade; a database written by one Lua is
-- read, updated and written by the others.
local dynafile = require "dynafile"
local support = dofile("spec/support/fs.lua")

local HAS_INTEGERS = math.type ~= nil
local ok_ffi, ffi = pcall(require, "ffi")
if not ok_ffi then ffi = nil end

local BIG = { 2 ^ 60, -2 ^ 62, 2 ^ 55 }
local DIGITS = {
  [2 ^ 60] = "1152921504606846976",
  [-2 ^ 62] = "-4611686018427387904",
  [2 ^ 55] = "36028797018963968",
}

-- The forms of the float f this Lua has: the float, the decimal value of
-- its digits, and the integer (5.3+) or int64_t cdata (LuaJIT).
local function forms(f)
  local t = { { "float", f }, { "decimal", dynafile.decimal(DIGITS[f]) } }
  if HAS_INTEGERS then
    t[#t + 1] = { "integer", math.tointeger(f) }
  elseif ffi then
    t[#t + 1] = { "int64_t", ffi.new("int64_t", f) }
  end
  return t
end

-- Every ordered pair of distinct forms of f: (name, written, looked up).
local function pairs_of(f)
  local out, fs = {}, forms(f)
  for i = 1, #fs do
    for j = 1, #fs do
      if i ~= j then
        out[#out + 1] = { fs[i][1] .. " -> " .. fs[j][1], fs[i][2], fs[j][2] }
      end
    end
  end
  return out
end

local function count(iter)
  local n = 0
  for _ in iter do n = n + 1 end
  return n
end

local function copy_fixture(v)
  local dir = support.tmpdir()
  assert(os.execute("cp -r tests/fixtures/" .. v .. "/bigkeys/. '" .. dir .. "/'"))
  return dir
end

describe("a number key beyond 2^53", function()
  local db

  before_each(function()
    db = assert(dynafile.open(support.tmpdir(), {
      pk = "PK", sk = "SK", sync = "off",
      gsi = { by_g = { pk = "g", sk = "gs" } },
      lsi = { by_n = { sk = "n" } },
    }))
  end)

  after_each(function()
    db:close()
    support.cleanup()
  end)

  it("is one key in every form, as a partition key and as a sort key", function()
    for _, f in ipairs(BIG) do
      for _, p in ipairs(pairs_of(f)) do
        local what, a, b = p[1], p[2], p[3]
        assert(db:put_item { PK = a, SK = 1, v = "pk" })
        assert(db:put_item { PK = 7, SK = a, v = "sk" })
        assert.equal("pk", (db:get_item { PK = b, SK = 1 } or {}).v, what)
        assert.equal("sk", (db:get_item { PK = 7, SK = b } or {}).v, what)
        local got = db:batch_get_item { { PK = b, SK = 1 }, { PK = 7, SK = b } }
        assert.equal("pk", got[1] and got[1].v, what)
        assert.equal("sk", got[2] and got[2].v, what)
        db:transaction(function(tx)
          assert.equal("pk", (tx:get_item { PK = b, SK = 1 } or {}).v, what)
          assert.equal("sk", (tx:get_item { PK = 7, SK = b } or {}).v, what)
        end)
        -- a put with the other form replaces the item
        assert(db:put_item { PK = b, SK = 1, v = "pk2" })
        assert(db:put_item { PK = 7, SK = b, v = "sk2" })
        assert.equal(2, count(db:scan()), what)
        assert.equal("pk2", db:get_item({ PK = a, SK = 1 }).v, what)
        -- updates and conditions find it
        local new = db:update_item({ PK = b, SK = 1 }, { set = { u = 1 } })
        assert.equal("pk2", new.v, what)
        assert.equal(1, db:update_item({ PK = 7, SK = b }, { set = { u = 1 } }).u, what)
        assert.equal(2, count(db:scan()), what)
        local seen
        assert.is_true(db:put_item({ PK = b, SK = 1, v = "pk3" },
          { condition = function(old) seen = old and old.v; return old ~= nil end }))
        assert.equal("pk2", seen, what)
        assert.is_true(db:put_item({ PK = 7, SK = b, v = "sk3" },
          { condition = dynafile.expr("attribute_exists(v)") }))
        local ok, _, code = db:put_item({ PK = b, SK = 1 },
          { condition = dynafile.expr("attribute_not_exists(v)") })
        assert.is_falsy(ok)
        assert.equal("ConditionalCheckFailed", code, what)
        assert.equal(2, count(db:scan()), what)
        -- query by partition key
        assert.equal(1, count(db:query(b)), what)
        assert.equal(1, count(db:query(7, { eq = b })), what)
        -- delete
        assert.is_true(db:delete_item({ PK = b, SK = 1 },
          { condition = dynafile.expr("v = :v", nil, { [":v"] = "pk3" }) }))
        assert.is_true(db:delete_item { PK = 7, SK = b })
        assert.equal(0, count(db:scan()), what)
      end
    end
  end)

  it("is one key of a global and a local index in every form", function()
    for _, f in ipairs(BIG) do
      for _, p in ipairs(pairs_of(f)) do
        local what, a, b = p[1], p[2], p[3]
        assert(db:put_item { PK = 1, SK = 1, g = a, gs = a, n = a })
        assert.equal(1, count(db:query(b, { index = "by_g" })), what)
        assert.equal(1, count(db:query(b, { index = "by_g", eq = b })), what)
        assert.equal(1, count(db:query(1, { index = "by_n", eq = b })), what)
        assert.is_true(db:delete_item { PK = 1, SK = 1 })
      end
    end
  end)

  it("sorts by its exact value among integers", function()
    if not HAS_INTEGERS then return end
    local f = 2 ^ 60
    local i = math.tointeger(f)
    for _, sk in ipairs { i - 1, f, i + 1, 1152921504606847000 } do
      assert(db:put_item { PK = 8, SK = sk })
    end
    local got = {}
    for it in db:query(8) do got[#got + 1] = it.SK end
    assert.same({ i - 1, f, i + 1, 1152921504606847000 }, got)
    assert.equal("1152921504606846976", dynafile.number_string(f))
  end)
end)

describe("number keys beyond 2^53 written by an older release", function()
  after_each(function() support.cleanup() end)

  -- v1/bigkeys and v3/bigkeys hold the same items (make_bigkeys.lua).
  local function check(dir)
    local db = assert(dynafile.open(dir))
    assert.is_truthy(db:check())
    for _, f in ipairs(BIG) do
      for _, form in ipairs(forms(f)) do
        local k = form[2]
        if f == 2 ^ 60 then
          assert.equal("a", (db:get_item { PK = k, SK = 1 } or {}).v, form[1])
          assert.equal("d", (db:get_item { PK = "s", SK = k } or {}).v, form[1])
          assert.equal(1, count(db:query(k, { index = "by_g" })), form[1])
          assert.equal(1, count(db:query("s", { index = "by_n", eq = k })), form[1])
        elseif f == -2 ^ 62 then
          assert.equal("b", (db:get_item { PK = k, SK = 2 ^ 55 } or {}).v, form[1])
          assert.equal("c", (db:get_item { PK = 2 ^ 55, SK = k } or {}).v, form[1])
          assert.equal(1, count(db:query(k, { index = "by_g" })), form[1])
        else
          assert.equal("c", (db:get_item { PK = k, SK = -2 ^ 62 } or {}).v, form[1])
          assert.equal("e", (db:get_item { PK = "s", SK = k } or {}).v, form[1])
        end
      end
    end
    -- the index order is the value order
    local gs = {}
    for it in db:query("G", { index = "by_g" }) do gs[#gs + 1] = it.v end
    assert.same({ "b", "g" }, gs)
    -- written and deleted with the float
    assert(db:put_item { PK = 2 ^ 60, SK = 1, v = "a2" })
    assert.equal(7, count(db:scan()))
    assert.is_true(db:delete_item({ PK = -2 ^ 62, SK = 2 ^ 55 },
      { condition = dynafile.expr("attribute_exists(v)") }))
    assert.equal(6, count(db:scan()))
    assert.is_truthy(db:check())
    db:close()
    local meta = support.slurp(dir .. "/meta.json")
    assert.equal(require("dynafile.core").format, tonumber(meta:match('"format": (%d+)')))
  end

  it("are found after the upgrade of a format-1 database written under Lua 5.1", function()
    check(copy_fixture("v1"))
  end)

  it("are found after the upgrade of a format-3 database (floats keyed by shortest decimal)",
    function()
      check(copy_fixture("v3"))
    end)
end)

describe("a database written by one Lua", function()
  after_each(function() support.cleanup() end)

  it("is read, updated and written by the others with the other forms", function()
    local root = os.getenv("DYNAFILE_ROOT") or "."
    local dir = support.tmpdir()
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    -- Each Lua finds the items the Luas before it put (with its own
    -- forms), updates them and puts its own; every Lua has the float.
    f:write([[
local dynafile = require "dynafile"
local me = arg[2]
local db = assert(dynafile.open(arg[1], { pk = "PK", sk = "SK",
  gsi = { by_g = { pk = "g" } } }))
local int = math.tointeger or function(x)
  local ok, ffi = pcall(require, "ffi")
  if ok then return ffi.new("int64_t", x) end
  return dynafile.number(string.format("%.0f", x))
end
local theirs = {}
for it in db:scan() do
  if it.from ~= me and it.g then theirs[#theirs + 1] = it.SK end
end
for _, sk in ipairs(theirs) do
  do
    assert(db:get_item { PK = 2 ^ 60, SK = sk }, "float " .. sk)
    assert(db:get_item { PK = int(2 ^ 60), SK = sk }, "integer " .. sk)
    local seen = "seen_" .. me:gsub("%W", "")
    assert(db:update_item({ PK = 2 ^ 60, SK = sk }, { set = { [seen] = true } }))
    assert(db:query(int(2 ^ 60), { index = "by_g" })(), "index")
  end
end
assert(db:put_item { PK = 2 ^ 60, SK = me, from = me, g = 2 ^ 60 })
assert(db:put_item { PK = int(-2 ^ 62), SK = me, from = me })
db:close()
print("ok")
]])
    f:close()
    local ran = {}
    for _, lua in ipairs { "lua5.4", "luajit", "lua5.1", "lua5.3" } do
      local build = root .. "/build/" .. lua
      local so = io.open(build .. "/dynafile/core.so")
      if so then
        so:close()
        local cmd = string.format(
          "cd '%s' && LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='%s/?.so;;' "
            .. "%s '%s' '%s' '%s'",
          root, build, lua, script, dir, lua)
        local p = assert(io.popen(cmd .. " 2>&1"))
        local out = p:read("*a")
        p:close()
        assert.equal("ok\n", out, lua)
        ran[#ran + 1] = lua
      end
    end
    os.remove(script)
    assert.is_true(#ran >= 2)
    local db = assert(dynafile.open(dir))
    -- one item per Lua per partition: no Lua made a second one
    assert.equal(#ran, count(db:query(2 ^ 60)))
    assert.equal(#ran, count(db:query(-2 ^ 62)))
    for i, lua in ipairs(ran) do
      local it = db:get_item { PK = 2 ^ 60, SK = lua }
      for j = i + 1, #ran do
        assert.is_true(it["seen_" .. ran[j]:gsub("%W", "")], lua .. " seen by " .. ran[j])
      end
    end
    db:close()
  end)
end)
