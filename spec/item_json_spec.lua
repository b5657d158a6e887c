-- Stored items as DynamoDB JSON written by C (src/itemjson.c), the path
-- `dynafile serve` answers GetItem, Query and Scan with: the same values
-- and the same DynamoDB sizes as the Lua path (dynafile.serve.itemjson and
-- dynafile.serve.size over the decoded item), for every type, escapes,
-- nesting and random items; the items it leaves to the Lua path (strings
-- and names that are not UTF-8, numbers outside DynamoDB's range, nesting
-- deeper than DynamoDB's) come back as tables; pages stop at their byte
-- budget and give their last item when asked.
local dynafile = require "dynafile"
local cjson = require "cjson"
local itemjson = require "dynafile.serve.itemjson"
local size = require "dynafile.serve.size"
local support = dofile("spec/support/fs.lua")

local B, D, SET = dynafile.binary, dynafile.decimal, dynafile.set

-- The values both paths must agree on, each as attribute "v".
local function samples()
  -- the deepest value an item holds: 31 lists below the attribute
  local deep = "x"
  for _ = 1, 31 do deep = { deep } end
  local deep_map = 1
  for i = 1, 30 do deep_map = { ["k" .. i] = deep_map } end
  return {
    "", "plain", 'quote " and backslash \\ and slash /', "new\nline\ttab\rcr",
    "\0\1\2\31 controls", "del \127", "two bytes: \195\169", "three: \226\130\172",
    "four: \240\159\152\128", ("long "):rep(100) .. '"', ("x"):rep(300),
    0, 1, -1, 7, 10, 100, 1000, 123456789, -100, -123000, 2 ^ 40, -(2 ^ 40),
    2 ^ 53, 0.1, -1.5e-7, 1e100, 1.25, 100.5, -0.001, 1e-120, 12345.678,
    D "12345678901234567890.123456789", D "-1e-130", D "1e-130",
    D "9.9999999999999999999999999999999999999e125", D "-12.340",
    B "", B "a", B "ab", B "abc", B "abcd", B "\0\255\128\1\2",
    true, false, dynafile.null,
    {}, { 1, "two", { 3 } }, { a = 1, b = { c = "d", e = {} } },
    { { {} }, { x = { y = { z = B "q" } } } },
    SET { "b", "a", "c\"" }, SET { 3, 1, 2.5, D "-1e-130", 100 },
    SET { B "x", B "\0", B "abc" },
    { s = SET { "z" }, n = SET { 1 } },
    deep, deep_map,
  }
end

local function same_as_lua(db, key)
  local text, bytes = db:_get_item_json(key)
  assert.equal("string", type(text), "expected the C path's text")
  local item = db:get_item(key)
  assert.same(cjson.decode(itemjson.item(item)), cjson.decode(text))
  assert.equal(size.item(item), bytes)
  return text
end

describe("items as DynamoDB JSON from C", function()
  local db, dir

  before_each(function()
    dir = support.tmpdir()
    db = assert(dynafile.open(dir, { pk = "pk", sk = "sk", sync = "off" }))
  end)

  after_each(function()
    db:close()
    support.cleanup()
  end)

  it("writes every type as the Lua path does, with the same size", function()
    for i, v in ipairs(samples()) do
      assert(db:put_item { pk = "p", sk = i, v = v })
      same_as_lua(db, { pk = "p", sk = i })
    end
  end)

  it("writes attribute names with escapes and UTF-8", function()
    assert(db:put_item { pk = "p", sk = 1, ['a"b'] = 1, ["c\\d"] = 2, ["\226\130\172"] = 3,
      ["new\nline"] = { ["in\"ner"] = "x" } })
    local text = same_as_lua(db, { pk = "p", sk = 1 })
    assert.truthy(text:find('"a\\"b":{"N":"1"}', 1, true))
  end)

  it("writes numbers in DynamoDB's canonical form", function()
    local cases = {
      { 0, "0" }, { -7, "-7" }, { 2 ^ 40, "1099511627776" }, { 0.5, "0.5" },
      { -1.5e-7, "-0.00000015" }, { D "-12.340", "-12.34" }, { 1e21, "1000000000000000000000" },
    }
    for i, c in ipairs(cases) do
      assert(db:put_item { pk = "n", sk = i, v = c[1] })
      local text = db:_get_item_json { pk = "n", sk = i }
      assert.equal(c[2], cjson.decode(text).v.N)
    end
  end)

  it("agrees with the Lua path on random items", function()
    math.randomseed(7)
    local function rstring()
      local t = {}
      for j = 1, math.random(0, 12) do
        local r = math.random(1, 10)
        if r == 1 then t[j] = string.char(math.random(0, 31))
        elseif r == 2 then t[j] = '"'
        elseif r == 3 then t[j] = "\195\169"
        else t[j] = string.char(math.random(32, 126)) end
      end
      return table.concat(t)
    end
    local function rvalue(depth)
      local r = math.random(1, depth < 4 and 10 or 7)
      if r == 1 then return rstring()
      elseif r == 2 then return math.random(-100000, 100000)
      elseif r == 3 then return math.random(-1000, 1000) / 8
      elseif r == 4 then return B(rstring())
      elseif r == 5 then return math.random(1, 2) == 1
      elseif r == 6 then return dynafile.null
      elseif r == 7 then return SET { rstring() .. "a", rstring() .. "b" }
      elseif r == 8 then
        local l = {}
        for j = 1, math.random(0, 4) do l[j] = rvalue(depth + 1) end
        return l
      else
        local m = {}
        for _ = 1, math.random(0, 4) do m[rstring() .. "k"] = rvalue(depth + 1) end
        return m
      end
    end
    for i = 1, 300 do
      local item = { pk = "r", sk = i }
      for _ = 1, math.random(0, 6) do item[rstring() .. "a"] = rvalue(0) end
      assert(db:put_item(item))
      same_as_lua(db, { pk = "r", sk = i })
    end
  end)

  it("leaves to the Lua path what JSON or DynamoDB cannot take as it is", function()
    local odd = {
      { v = "not \255 UTF-8" }, { ["name \192\128"] = 1 }, { v = { "\237\160\128" } },
      { v = 1e300 }, { v = -1e-200 }, { v = { m = { SET { "ok", "bad \128" } } } },
    }
    for i, extra in ipairs(odd) do
      local item = { pk = "odd", sk = i }
      for k, v in pairs(extra) do item[k] = v end
      assert(db:put_item(item))
      local got, bytes = db:_get_item_json { pk = "odd", sk = i }
      assert.equal("table", type(got), "case " .. i)
      assert.is_nil(bytes)
      assert.same(db:get_item { pk = "odd", sk = i }, got)
    end
  end)

  it("gives false for a missing item", function()
    assert.is_false(db:_get_item_json { pk = "none", sk = 1 })
  end)

  it("hides an expired item as get_item does", function()
    assert(db:set_ttl("exp"))
    assert(db:put_item { pk = "t", sk = 1, exp = os.time() - 10 })
    assert(db:put_item { pk = "t", sk = 2, exp = os.time() + 3600 })
    assert.is_nil(db:get_item { pk = "t", sk = 1 })
    assert.is_false(db:_get_item_json { pk = "t", sk = 1 })
    assert.equal("string", type((db:_get_item_json { pk = "t", sk = 2 })))
  end)

  describe("pages", function()
    local function fill(n)
      for i = 1, n do assert(db:put_item { pk = "q", sk = i, v = ("v"):rep(i) }) end
    end

    it("joins a page's items and adds up their sizes", function()
      fill(12)
      local text, count, bytes, nk, examined, last =
        db:_query_page_json("q", { limit = 5 }, 1e9, false)
      assert.equal(5, count)
      assert.equal(5, examined)
      assert.is_nil(last)
      local items, want = cjson.decode("[" .. text .. "]"), 0
      local page = assert(db:query_page("q", { limit = 5 }))
      for i, it in ipairs(page) do
        assert.same(cjson.decode(itemjson.item(it)), items[i])
        want = want + size.item(it)
      end
      assert.equal(want, bytes)
      assert.same({ pk = "q", sk = 5 }, nk)
    end)

    it("stops at the item whose size reaches the budget and gives it", function()
      fill(12)
      -- each item: pk (2 + 1) + sk (2 + 2) + v (1 + i) = 8 + i bytes
      local text, count, bytes, _, _, last = db:_query_page_json("q", {}, 9 + 10 + 11, false)
      assert.equal(3, count)
      assert.equal(30, bytes)
      assert.equal(3, #cjson.decode("[" .. text .. "]"))
      assert.same(db:get_item { pk = "q", sk = 3 }, last)
      _, count, bytes, _, _, last = db:_query_page_json("q", {}, 9 + 10 + 11 + 1, false)
      assert.equal(4, count)
      assert.equal(42, bytes)
      assert.equal(4, last.sk)
    end)

    it("gives the last item of a full page when asked", function()
      fill(12)
      local _, count, _, _, _, last = db:_query_page_json("q", { limit = 4 }, 1e9, true)
      assert.equal(4, count)
      assert.equal(4, last.sk)
      -- a short page (the partition ends first) is not full: no last item
      _, count, _, _, _, last = db:_query_page_json("q", { limit = 20 }, 1e9, true)
      assert.equal(12, count)
      assert.is_nil(last)
    end)

    it("returns an empty text for an empty page", function()
      local text, count, bytes, nk = db:_query_page_json("none", {}, 1e9, false)
      assert.equal("", text)
      assert.equal(0, count)
      assert.equal(0, bytes)
      assert.is_nil(nk)
    end)

    it("gives the page as tables when one item needs the Lua path", function()
      fill(3)
      assert(db:put_item { pk = "q", sk = 2, v = "bad \255" })
      local items, nk = db:_query_page_json("q", {}, 1e9, false)
      assert.equal("table", type(items))
      assert.is_nil(nk)
      assert.same(assert(db:query_page("q")), items)
    end)

    it("scans the same way", function()
      fill(6)
      local text, count = db:_scan_page_json({}, 1e9, false)
      assert.equal(6, count)
      assert.equal(6, #cjson.decode("[" .. text .. "]"))
    end)
  end)
end)
