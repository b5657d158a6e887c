-- Filters and conditions on sets, binary values and 38-digit numbers: the
-- same answers from a local database and from the DynamoDB backend
-- (tests/remote_specs.sh runs this file there), whether the server
-- evaluates them (a scan's filter, a condition it can express) or the
-- backend does in the client (a query's filter naming a key attribute, a
-- condition with a regular expression, a dynafile.expr filter on a key).
local dynafile = require "dynafile"

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  return p .. "-typed"
end

local bin, set, dec, E = dynafile.binary, dynafile.set, dynafile.decimal, dynafile.expr
local BIG = "12345678901234567890123456789012345678" -- 38 digits
local BIG_LESS = "12345678901234567890123456789012345677"

describe("filters and conditions on sets, binary values and 38-digit numbers", function()
  local dir, db

  local function items()
    return {
      { PK = "t", SK = 1, ss = set { "a", "b" }, ns = set { 1, 2.5, dec(BIG) },
        bs = set { bin("\0\1"), bin("\255") }, bin = bin("\0\1\2"), big = dec(BIG), name = "xy" },
      { PK = "t", SK = 2, ss = set { "c" }, ns = set { 3 }, bin = bin("\9"), big = dec(BIG_LESS),
        name = "z" },
      { PK = "t", SK = 3, tiny = dec("1E-130"), name = "x3" },
    }
  end

  before_each(function()
    dir = tmpdir()
    db = assert(dynafile.open(dir, { pk = "PK", sk = "SK" }))
    for _, it in ipairs(items()) do assert(db:put_item(it)) end
  end)

  after_each(function()
    db:close()
    os.execute("rm -rf '" .. dir .. "'")
  end)

  local function sks(iter)
    local out = {}
    for it in iter do out[#out + 1] = it.SK end
    table.sort(out)
    return out
  end

  -- the SKs a filter keeps, from a scan and from a query whose filter
  -- also names the sort key
  local function both(filter, on_key)
    return sks(db:scan { filter = filter }), sks(db:query("t", { filter = on_key }))
  end

  local STRINGS = {
    { 'contains(ss, "a")', { 1 } },
    { "size(ss) == 2", { 1 } },
    { "size(bin) == 3", { 1 } },
    { "size(bs) == 2", { 1 } },
    { "contains(ns, 2.5)", { 1 } },
    { "big > 1e37", { 1, 2 } },
    { "big < 1e37", {} },
    { "tiny > 0 and tiny < 1e-129", { 3 } },
    { "exists(bs)", { 1 } },
    { "not exists(bs)", { 2, 3 } },
  }
  for _, case in ipairs(STRINGS) do
    it("keeps what the filter string " .. case[1] .. " keeps", function()
      local scanned, queried = both(case[1], case[1] .. " and SK >= 0")
      assert.same(case[2], scanned)
      assert.same(case[2], queried)
    end)
  end

  local EXPRS = {
    { "contains(bs, :b)", { [":b"] = bin("\255") }, { 1 } },
    { "bin = :b", { [":b"] = bin("\0\1\2") }, { 1 } },
    { "bin < :b", { [":b"] = bin("\1") }, { 1 } },
    { "big = :n", { [":n"] = dec(BIG) }, { 1 } },
    { "big < :n", { [":n"] = dec(BIG) }, { 2 } },
    { "big BETWEEN :a AND :b", { [":a"] = dec(BIG_LESS), [":b"] = dec(BIG_LESS) }, { 2 } },
    { "tiny = :n", { [":n"] = dec("1E-130") }, { 3 } },
    { "ns = :ns", { [":ns"] = set { dec(BIG), 2.5, 1 } }, { 1 } },
    { "ss = :ss", { [":ss"] = set { "b", "a" } }, { 1 } },
    { "contains(ns, :n)", { [":n"] = dec(BIG) }, { 1 } },
    { "size(bin) = :n", { [":n"] = 3 }, { 1 } },
  }
  for _, case in ipairs(EXPRS) do
    it("keeps what the DynamoDB filter " .. case[1] .. " keeps", function()
      local on_key = { [":zero"] = 0 }
      for k, v in pairs(case[2]) do on_key[k] = v end
      local scanned, queried = both(E(case[1], nil, case[2]),
        E(case[1] .. " AND SK >= :zero", nil, on_key))
      assert.same(case[3], scanned)
      assert.same(case[3], queried)
    end)
  end

  -- an update under a condition: true, or the failure's code
  local function under(c)
    local ok, _, code = db:update_item({ PK = "t", SK = 1 }, { set = { seen = 1 } },
      { condition = c })
    return ok and true or code
  end

  it("judges conditions on sets, binary values and 38-digit numbers", function()
    assert.equal(true, under('contains(ss, "a")'))
    assert.equal("ConditionalCheckFailed", under('contains(ss, "z")'))
    assert.equal(true, under("size(bin) == 3 and big > 1e37"))
    assert.equal(true, under(E("contains(bs, :b)", nil, { [":b"] = bin("\255") })))
    assert.equal("ConditionalCheckFailed", under(E("big = :n", nil, { [":n"] = dec(BIG_LESS) })))
    assert.equal(true, under(E("ns = :ns", nil, { [":ns"] = set { 2.5, 1, dec(BIG) } })))
  end)

  it("judges conditions with a regular expression (run in the client) on these types", function()
    assert.equal(true, under('name =~ /^x/ and contains(ss, "a")'))
    assert.equal("ConditionalCheckFailed", under("name =~ /^x/ and size(bin) == 4"))
    assert.equal(true, under("name =~ /^x/ and contains(ns, 2.5) and big > 1e37"))
    assert.equal("ConditionalCheckFailed", under("name =~ /^x/ and big < 1e37"))
    -- and the write leaves every other attribute as it was, type for type
    local it = assert(db:get_item { PK = "t", SK = 1 })
    assert.equal(1, it.seen)
    assert.equal("SS", dynafile.type(it.ss))
    assert.equal("BS", dynafile.type(it.bs))
    assert.equal("NS", dynafile.type(it.ns))
    assert.equal("B", dynafile.type(it.bin))
    assert.equal(bin("\0\1\2"), it.bin)
    assert.equal(dec(BIG), it.big)
    assert.is_true(it.bs:contains(bin("\255")) and it.ns:contains(dec(BIG)))
  end)

  it("gives an update function and return_old these types, unchanged", function()
    local seen
    local new, old = db:update_item({ PK = "t", SK = 1 }, function(item)
      seen = item
      item.n = 1
      return item
    end, { return_old = true })
    for _, it in ipairs { seen, new, old } do
      assert.equal("SS", dynafile.type(it.ss))
      assert.equal("BS", dynafile.type(it.bs))
      assert.equal("B", dynafile.type(it.bin))
      assert.equal(dec(BIG), it.big)
    end
    assert.is_nil(old.n)
    assert.equal(1, new.n)
  end)
end)
