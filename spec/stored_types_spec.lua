-- DynamoDB's types stored with their type: binary values (B), decimals
-- (numbers no Lua number holds exactly), string, number and binary sets
-- (SS, NS, BS) go into an item, come back as the same values, serve as
-- key values (binary and decimal keys), and are seen by filters, updates
-- and indexes as DynamoDB sees them.  A database written by one Lua is
-- read, updated and deleted from by the others.
local dynafile = require "dynafile"
local support = dofile("spec/support/fs.lua")

local function digits(v) return dynafile.number_string(v) end

describe("stored DynamoDB types", function()
  local db, dir

  before_each(function()
    dir = support.tmpdir()
    db = assert(dynafile.open(dir, { pk = "PK", sk = "SK", sync = "off" }))
  end)

  after_each(function()
    db:close()
    support.cleanup()
  end)

  it("round-trips binary values, decimals and sets, nested too", function()
    local d = dynafile.decimal("12345678901234567890.123456789")
    assert(db:put_item {
      PK = "p", SK = 1, d = d, b = dynafile.binary("\0\1\255"),
      ss = dynafile.set { "b", "a" },
      ns = dynafile.set { 3, 1, dynafile.decimal("-1e-130") },
      bs = dynafile.set { dynafile.binary("x"), dynafile.binary("\0") },
      nested = { l = { dynafile.binary("q"), dynafile.set { "z" } }, m = { d = d } },
    })
    local got = db:get_item { PK = "p", SK = 1 }
    assert.equal("N", dynafile.type(got.d))
    assert.equal("12345678901234567890.123456789", tostring(got.d))
    assert.is_true(got.d == d)
    assert.equal("B", dynafile.type(got.b))
    assert.equal("\0\1\255", got.b:bytes())
    assert.equal("SS", dynafile.type(got.ss))
    assert.same({ "a", "b" }, { got.ss[1], got.ss[2] }) -- stored sorted
    assert.equal("NS", dynafile.type(got.ns))
    assert.same({ "-0." .. ("0"):rep(129) .. "1", "1", "3" },
      { digits(got.ns[1]), digits(got.ns[2]), digits(got.ns[3]) })
    assert.equal("BS", dynafile.type(got.bs))
    assert.same({ "\0", "x" }, { got.bs[1]:bytes(), got.bs[2]:bytes() })
    assert.equal("B", dynafile.type(got.nested.l[1]))
    assert.equal("SS", dynafile.type(got.nested.l[2]))
    assert.is_true(got.nested.m.d == d)
    -- and again: what was read is written back unchanged
    assert(db:put_item(got))
    local again = db:get_item { PK = "p", SK = 1 }
    assert.is_true(again.ss == got.ss and again.ns == got.ns and again.bs == got.bs)
    assert.is_true(again.b == got.b and again.d == got.d)
  end)

  it("refuses empty sets and sets of the wrong kind, writing nothing", function()
    local ok, err = pcall(db.put_item, db, { PK = "p", SK = 2, s = dynafile.set({}, "S") })
    assert.is_false(ok)
    assert.matches("dynafile.put_item: item: s: string set: a set must hold at least one element",
      err, 1, true)
    local fake = setmetatable({ 1 }, getmetatable(dynafile.set { "a" }))
    ok, err = pcall(db.put_item, db, { PK = "p", SK = 2, s = fake })
    assert.is_false(ok)
    assert.matches("item: s: string set:", err, 1, true)
    assert.is_nil(db:get_item { PK = "p", SK = 2 })
  end)

  it("takes binary values and decimals as key values", function()
    local pk = dynafile.binary("\255k\0")
    local big = dynafile.decimal("123456789012345678901234567890")
    local small = dynafile.decimal("-0.000000000000000000000000000001")
    for _, sk in ipairs { big, 5, small, 2.5 } do
      assert(db:put_item { PK = pk, SK = sk, v = digits(sk) })
    end
    local order = {}
    for it in db:query(pk) do order[#order + 1] = digits(it.SK) end
    assert.same({ "-0.000000000000000000000000000001", "2.5", "5",
      "123456789012345678901234567890" }, order)
    local it = db:get_item { PK = dynafile.binary("\255k\0"),
      SK = dynafile.decimal("123456789012345678901234567890") }
    assert.equal("123456789012345678901234567890", it.v)
    assert.equal("B", dynafile.type(it.PK))
    -- the key read back deletes that item, and only it
    assert(db:delete_item { PK = it.PK, SK = it.SK })
    assert.is_nil(db:get_item { PK = pk, SK = big })
    local n = 0
    for _ in db:query(pk) do n = n + 1 end
    assert.equal(3, n)
    -- a string with the same bytes is another key
    assert.is_nil(db:get_item { PK = "\255k\0", SK = 5 })
    -- a decimal bound of a DynamoDB key condition comes back as a decimal
    local args = assert(dynafile.ddb_args(nil, { [":p"] = pk,
      [":x"] = dynafile.decimal("2.50000000000000000000001") }))
    local kc = assert(args:key_condition("PK = :p AND SK > :x", "PK", "SK"))
    assert.equal("2.50000000000000000000001", digits(kc.lo))
    order = {}
    for x in db:query(kc.pk, { gt = kc.lo }) do order[#order + 1] = digits(x.SK) end
    assert.same({ "5" }, order)
  end)

  it("is seen by filters and by set updates as DynamoDB sees it", function()
    assert(db:put_item { PK = "p", SK = 1, ss = dynafile.set { "a", "b" }, n = 1 })
    assert(db:put_item { PK = "p", SK = 2, ss = dynafile.set { "c" }, n = 2 })
    local hits = {}
    for it in db:scan { filter = dynafile.expr("contains(ss, :v)", nil, { [":v"] = "a" }) } do
      hits[#hits + 1] = it.SK
    end
    assert.same({ 1 }, hits)
    hits = {} -- a Lua filter sees them through its view of the item
    for it in db:scan { filter = function(v)
      return dynafile.type(v.ss) == "SS" and v.ss:contains("a")
    end } do
      hits[#hits + 1] = it.SK
    end
    assert.same({ 1 }, hits)
    assert(db:update_item({ PK = "p", SK = 1 },
      dynafile.expr("ADD ss :s", nil, { [":s"] = dynafile.set { "c", "a" } })))
    local got = db:get_item { PK = "p", SK = 1 }
    assert.equal("SS", dynafile.type(got.ss))
    assert.same({ "a", "b", "c" }, { got.ss[1], got.ss[2], got.ss[3] })
    assert(db:update_item({ PK = "p", SK = 1 },
      dynafile.expr("DELETE ss :s", nil, { [":s"] = dynafile.set { "b" } })))
    got = db:get_item { PK = "p", SK = 1 }
    assert.same({ "a", "c" }, { got.ss[1], got.ss[2] })
  end)

  it("keeps integers beyond 2^53 exact on every Lua (int64_t cdata under LuaJIT)", function()
    local ok, ffi = pcall(require, "ffi")
    local big, min
    if ok and math.type == nil then
      big, min = ffi.new("int64_t", 2 ^ 53) + 1, ffi.new("int64_t", -2 ^ 62) * 2
    elseif math.type then
      big, min = math.tointeger(2 ^ 53) + 1, math.mininteger
    else -- Lua 5.1: a decimal value stands for them
      big, min = dynafile.number("9007199254740993"), dynafile.number("-9223372036854775808")
    end
    assert(db:put_item { PK = "p", SK = big, v = min })
    local it = db:get_item { PK = "p", SK = big }
    assert.equal("9007199254740993", digits(it.SK))
    assert.equal("-9223372036854775808", digits(it.v))
    -- the key read back names that item, not its double neighbours
    assert(db:put_item { PK = "p", SK = 2 ^ 53, v = 0 })
    assert(db:delete_item { PK = "p", SK = it.SK })
    assert.is_nil(db:get_item { PK = "p", SK = big })
    assert.is_table(db:get_item { PK = "p", SK = 2 ^ 53 })
  end)

  it("is read, updated and deleted by every other Lua", function()
    local d = "98765432109876543210.5"
    assert(db:put_item {
      PK = "x", SK = dynafile.decimal(d), b = dynafile.binary("\1\2"),
      ns = dynafile.set { dynafile.decimal("1e125"), 7 }, keep = dynafile.decimal(d),
    })
    db:close()
    local root = os.getenv("DYNAFILE_ROOT") or "."
    local script = support.tmpdir() .. ".lua"
    local f = assert(io.open(script, "w"))
    f:write([[
local dynafile = require "dynafile"
local db = assert(dynafile.open(arg[1]))
local it = assert(db:get_item { PK = "x", SK = dynafile.decimal("]] .. d .. [[") })
assert(dynafile.type(it.b) == "B" and it.b:bytes() == "\1\2")
assert(dynafile.type(it.ns) == "NS" and #it.ns == 2)
assert(tostring(it.keep) == "]] .. d .. [[")
assert(db:update_item({ PK = it.PK, SK = it.SK }, { set = { seen = arg[2] } }))
assert(db:put_item { PK = "y", SK = 1, from = arg[2], b = it.b, ns = it.ns })
assert(db:delete_item { PK = "y", SK = 1 })
assert(db:put_item { PK = "z", SK = it.SK, from = arg[2], b = it.b, ns = it.ns })
db:close()
print("ok")
]])
    f:close()
    local ran = 0
    for _, lua in ipairs { "lua5.4", "lua5.3", "lua5.1", "luajit" } do
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
        ran = ran + 1
      end
    end
    os.remove(script)
    assert.is_true(ran >= 2)
    db = assert(dynafile.open(dir))
    local it = db:get_item { PK = "x", SK = dynafile.decimal(d) }
    assert.equal(d, tostring(it.keep)) -- untouched by the others' updates
    local z = db:get_item { PK = "z", SK = dynafile.decimal(d) }
    assert.equal("B", dynafile.type(z.b))
    assert.equal("NS", dynafile.type(z.ns))
    local ns = { digits(z.ns[1]), digits(z.ns[2]) }
    table.sort(ns)
    assert.same({ "1" .. ("0"):rep(125), "7" }, ns)
    assert.is_nil(db:get_item { PK = "y", SK = 1 })
  end)
end)
