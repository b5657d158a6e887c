-- Filter expression strings, from the Lua side: compiled once per call by
-- the parser in C and evaluated in C on the stored bytes, never through
-- Lua's load.
local dynafile = require "dynafile"
local backend = dofile("spec/support/backend.lua")

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  return p .. "-filter"
end

local function rmdir(p)
  os.execute("rm -rf '" .. p .. "'")
end

describe("filter strings", function()
  local dir, db

  -- id -> item; every item lives in partition "f" with SK = its id
  local rows = {
    { SK = 1, name = "alice", age = 30, score = 1.5, tags = { "red", "blue" },
      data = { count = 3, items = { { name = "x" }, { name = "y" } } }, flag = true },
    { SK = 2, name = "bob", age = 25, score = 0, tags = { "green" },
      data = { count = 0 }, flag = false },
    { SK = 3, name = "Alba", age = "thirty", tags = dynafile.array {},
      data = { count = -2, note = "neg" } },
    { SK = 4, name = "carol/dan", age = 41.0, nothing = dynafile.null, data = {} },
    { SK = 5 },
    { SK = 6, name = "text-key" },
    { SK = 7, name = "ab", ["odd name"] = 7, ["and"] = 1 },
  }

  local function matches(expr, opts)
    local out = {}
    opts = opts or {}
    opts.filter = expr
    for it in db:query("f", opts) do out[#out + 1] = it.SK end
    return out
  end

  before_each(function()
    dir = tmpdir()
    db = assert(dynafile.open(dir, { pk = "PK", sk = "SK" }))
    for _, it in ipairs(rows) do
      it.PK = "f"
      assert(db:put_item(it))
    end
  end)

  after_each(function()
    db:close()
    rmdir(dir)
  end)

  describe("the seed's examples", function()
    it("matches SK == 1", function()
      assert.same({ 1 }, matches("SK == 1"))
    end)

    it("matches data.count > 0", function()
      assert.same({ 1 }, matches("data.count > 0"))
    end)
  end)

  it("compares with == != < <= > >= and the aliases = and <>", function()
    assert.same({ 2 }, matches("age == 25"))
    assert.same({ 2 }, matches("age = 25"))
    assert.same({ 1, 3, 4 }, matches("age != 25"))
    assert.same({ 1, 3, 4 }, matches("age <> 25"))
    assert.same({ 2 }, matches("age < 30"))
    assert.same({ 1, 2 }, matches("age <= 30"))
    assert.same({ 4 }, matches("age > 30"))
    assert.same({ 1, 4 }, matches("age >= 30"))
    -- literals on either side
    assert.same({ 2 }, matches("30 > age"))
    -- strings compare bytewise
    assert.same({ 2, 4, 6 }, matches("name > 'b'"))
    assert.same({ 3, 7 }, matches([[name < "alice"]]))
  end)

  it("compares integers and floats numerically", function()
    assert.same({ 4 }, matches("age == 41"))
    assert.same({ 1 }, matches("age == 30.0"))
    assert.same({ 1 }, matches("score > 1"))
    assert.same({ 2 }, matches("score == 0"))
    assert.same({ 1, 2 }, matches("score >= -0.5"))
    assert.same({ 1 }, matches("score == 1.5e0"))
  end)

  it("treats values of different types as unequal, not as an error", function()
    assert.same({}, matches("age == '30'"))
    assert.same({}, matches("name > 5"))
    assert.same({}, matches("name < 5"))
    assert.same({ 3 }, matches("age == 'thirty'"))
    -- != holds when the value is there and of another type
    assert.same({ 1, 2, 3, 4 }, matches("age != 'x'"))
    assert.same({}, matches("tags > 1"))
    assert.same({}, matches("flag > 0"))
    assert.same({ 1 }, matches("flag > false"))
  end)

  it("makes every comparison on a missing attribute false, != included", function()
    assert.same({}, matches("missing == 1"))
    assert.same({}, matches("missing != 1"))
    assert.same({}, matches("missing < 1"))
    assert.same({}, matches("missing in [1, 2]"))
    assert.same({}, matches("begins_with(missing, 'a')"))
    assert.same({}, matches("contains(missing, 'a')"))
    assert.same({}, matches("size(missing) >= 0"))
    assert.same({}, matches("data.missing.deeper == 1"))
    assert.same({ 5 }, matches("not exists(age) and not exists(name)"))
    -- `not` of a false comparison is true
    assert.same({ 2, 3, 4, 5, 6, 7 }, matches("not (age == 30)"))
  end)

  it("binds comparisons tighter than not, not tighter than and, and tighter than or", function()
    -- a or (b and c)
    assert.same({ 1, 2 }, matches("age == 25 or name == 'alice' and age == 30"))
    assert.same({ 2 }, matches("(age == 25 or name == 'alice') and age < 30"))
    -- (not a) and b
    assert.same({ 2 }, matches("not age == 30 and age == 25"))
    assert.same({ 2, 3, 4, 5, 6, 7 }, matches("not (age == 30 and name == 'alice')"))
    -- not not
    assert.same({ 1 }, matches("not not (age == 30)"))
    -- && || ! spellings and upper case keywords
    assert.same({ 1, 2 }, matches("age == 25 || name == 'alice' && age == 30"))
    assert.same({ 2 }, matches("!(age == 30) && age == 25"))
    assert.same({ 1, 2 }, matches("age == 25 OR age == 30"))
    assert.same({ 1, 2, 3, 4, 5, 6, 7 }, matches("exists(SK) or SK == 1 and SK == 2"))
  end)

  it("tests membership with in [...]", function()
    assert.same({ 1, 2 }, matches("name in ['alice', 'bob', 'zed']"))
    assert.same({ 2, 4 }, matches("age in [25, 41]"))
    assert.same({ 1 }, matches("age in [30.0]"))
    assert.same({}, matches("age in []"))
    assert.same({ 4 }, matches("nothing in [null]"))
  end)

  it("tests membership of booleans with in [...]", function()
    assert.same({ 1, 2 }, matches("flag in [true, false]"))
    assert.same({ 2 }, matches("flag in [false]"))
  end)

  it("matches regular expressions with anchors, classes and the i flag", function()
    assert.same({ 1, 3, 4, 7 }, matches("name =~ /a.*/"))        -- unanchored: anywhere
    assert.same({ 1, 7 }, matches("name =~ /^a/"))
    assert.same({ 1, 3, 7 }, matches("name =~ /^a/i"))
    assert.same({ 3 }, matches("name =~ /a$/"))
    assert.same({ 1 }, matches("name =~ /^alice$/"))
    assert.same({}, matches("name =~ /^lice$/"))
    assert.same({ 7 }, matches("name =~ /^[a-b]+$/"))
    assert.same({ 2 }, matches("name =~ /^b[a-z]b$/"))
    assert.same({ 4 }, matches("name =~ /\\//"))                 -- an escaped slash
    assert.same({ 6 }, matches("name =~ /^text-(key|door)$/"))
    -- numbers are not strings; a missing attribute does not match
    assert.same({}, matches("age =~ /3/"))
    assert.same({}, matches("missing =~ /x/"))
  end)

  it("follows nested paths into maps and lists (0-based)", function()
    assert.same({ 1 }, matches("data.count == 3"))
    assert.same({ 3 }, matches("data.count < 0 and data.note == 'neg'"))
    assert.same({ 1 }, matches("tags[0] == 'red'"))
    assert.same({ 1 }, matches("tags[1] == 'blue'"))
    assert.same({}, matches("tags[2] == 'blue'"))
    assert.same({ 1 }, matches("data.items[1].name == 'y'"))
    assert.same({}, matches("data.count.x == 1"))
    assert.same({ 7 }, matches("`odd name` == 7"))
    assert.same({ 7 }, matches("`and` == 1"))
  end)

  it("evaluates exists, begins_with, contains and size", function()
    assert.same({ 1, 2, 3, 4 }, matches("exists(data)"))
    assert.same({ 1 }, matches("exists(data.items[0].name)"))
    assert.same({ 4 }, matches("exists(nothing)"))
    assert.same({ 1, 3 }, matches("begins_with(name, 'al') or begins_with(name, 'Al')"))
    assert.same({}, matches("begins_with(age, '3')"))
    assert.same({ 1, 3, 4 }, matches("contains(name, 'l')"))
    assert.same({ 1 }, matches("contains(tags, 'blue')"))
    assert.same({}, matches("contains(tags, 'blu')"))
    assert.same({ 4 }, matches("contains(name, '/')"))
    assert.same({ 1, 4, 6 }, matches("size(name) > 4"))
    assert.same({ 1 }, matches("size(tags) == 2"))
    assert.same({ 3 }, matches("size(tags) == 0"))
    assert.same({ 4 }, matches("size(data) == 0"))
    assert.same({ 1 }, matches("size(data.items) == 2 and size(data) == 2"))
    -- size of a number counts as missing; of a string, its bytes
    assert.same({ 3 }, matches("size(age) > 0"))
  end)

  it("compares null and booleans", function()
    assert.same({ 4 }, matches("nothing == null"))
    assert.same({ 1 }, matches("flag == true"))
    assert.same({ 2 }, matches("flag == false"))
    assert.same({ 2 }, matches("flag != true"))
  end)

  it("orders booleans, false before true, on either side; values of other types not", function()
    assert.same({ 1, 2 }, matches("flag >= false"))
    assert.same({ 2 }, matches("flag < true"))
    assert.same({}, matches("flag < false"))
    assert.same({ 2 }, matches("true > flag"))
    assert.same({ 1, 2 }, matches("flag <= flag"))
    assert.same({}, matches("flag < flag"))
    assert.same({ 1, 2, 3, 4, 6, 7 }, matches("name >= name"))
    assert.same({ 1, 2, 3, 4, 5, 6, 7 }, matches("data == data or SK == SK"))
    assert.same({ 1, 2, 3, 4 }, matches("size(data) <= size(data)"))
    assert.same({}, matches("nothing >= null"))
    assert.same({}, matches("size(tags) > false"))
  end)

  it("filters scans as well as queries, and combines with key conditions and limit", function()
    db:put_item({ PK = "g", SK = 1, age = 30 })
    local n = 0
    for it in db:scan({ filter = "age == 30" }) do
      n = n + 1
      assert.equal(30, it.age)
    end
    assert.equal(2, n)
    assert.same({ 2 }, matches("age < 40", { between = { 2, 4 }, limit = 1 }))
    assert.same({ 4, 2, 1 },
      matches("age < 50 and age > 20", { scan_index_forward = false, le = 4 }))
  end)

  it("never turns an item that fails the filter into a Lua table", function()
    local stats = {}
    local n = 0
    for _ in db:query("f", { filter = "age >= 30", stats = stats }) do n = n + 1 end
    assert.equal(2, n)
    assert.equal(#rows, stats.examined)
    assert.equal(2, stats.decoded)
    -- a Lua function filter judges views of the stored items: only the
    -- one it accepts becomes a table (the DynamoDB backend gives filters
    -- decoded items: every one it examines)
    for _ in db:query("f", { filter = function(it) return it.age == 30 end, stats = stats }) do end
    assert.equal(#rows, stats.examined)
    assert.equal(backend.remote and #rows or 1, stats.decoded)
  end)

  describe("syntax errors", function()
    local bad = {
      { "age >", 6 },
      { "age == 1 and", 13 },
      { "(age == 1", 10 },
      { "age === 1", 7 },
      { "name =~ /unclosed", 9 },
      { "name in [1, ", 13 },
      { "exists(1)", 8 },
    }

    it("raise from the iterators, naming the column", function()
      for _, case in ipairs(bad) do
        local ok, err = pcall(db.query, db, "f", { filter = case[1] })
        assert.is_false(ok)
        assert.truthy(tostring(err):find("dynafile.query: filter: ", 1, true), err)
        assert.truthy(tostring(err):find("column " .. case[2], 1, true), case[1] .. " -> " .. err)
      end
      assert.error_matches(function() db:scan({ filter = "a ==" }) end,
        "dynafile.scan: filter: .*column 5")
    end)

    it("are returned by the page calls as nil, message, \"ValidationError\"", function()
      for _, case in ipairs(bad) do
        local items, msg, code = db:query_page("f", { filter = case[1] })
        assert.is_nil(items)
        assert.equal("ValidationError", code)
        assert.truthy(msg:find("column " .. case[2], 1, true), msg)
      end
      local items, msg, code = db:scan_page({ filter = "" })
      assert.is_nil(items)
      assert.equal("ValidationError", code)
      assert.truthy(msg:find("column 1", 1, true), msg)
    end)

    it("leave the database exactly as it was", function()
      pcall(db.query, db, "f", { filter = "age >" })
      local n = 0
      for _ in db:scan() do n = n + 1 end
      assert.equal(#rows, n)
    end)
  end)

  describe("filter strings are not Lua", function()
    it("treat os.exit() and other Lua code as syntax errors", function()
      local lua_code = {
        "os.exit()",
        "os.exit(1)",
        "print('x')",
        "(function() os.exit() end)()",
        "age == 30 or os.exit()",
        "]] os.exit() --[[",
        "age == #tags",
        "age .. 'x' == '30x'",
        "return true",
        "nil",
      }
      for _, src in ipairs(lua_code) do
        local items, msg, code = db:query_page("f", { filter = src })
        assert.is_nil(items, src)
        assert.equal("ValidationError", code)
        assert.truthy(msg:find("column", 1, true))
      end
      -- still alive: the process did not exit
      assert.equal(#rows, #db:query_page("f"))
    end)

    it("never reach load or loadstring", function()
      local real_load, real_loadstring = load, rawget(_G, "loadstring")
      local calls = 0
      local function spy() calls = calls + 1 return nil, "no" end
      load = spy -- luacheck: ignore 121
      rawset(_G, "loadstring", spy)
      local ok, err = pcall(function()
        assert.same({ 1 }, matches("name == 'alice'"))
        db:query_page("f", { filter = "os.exit()" })
        db:scan_page({ filter = "age > 1" })
      end)
      load = real_load -- luacheck: ignore 121
      rawset(_G, "loadstring", real_loadstring)
      assert(ok, err)
      assert.equal(0, calls)
      -- and the Lua layer's source never calls them
      for _, f in ipairs({ "lua/dynafile/init.lua", "lua/dynafile/batch.lua",
        "lua/dynafile/update.lua" }) do
        local fh = assert(io.open(f))
        local src = fh:read("*a")
        fh:close()
        assert.is_nil(src:find("loadstring", 1, true), f)
        assert.is_nil(src:find("[^%w_.:]load%s*%("), f)
      end
    end)
  end)
end)

describe("filter strings on a sort key holding numbers and strings", function()
  local dir, db

  before_each(function()
    dir = tmpdir()
    db = assert(dynafile.open(dir, { pk = "PK", sk = "SK" }))
    for _, sk in ipairs({ 1, 2, "a1", "b1", "1" }) do assert(db:put_item({ PK = "f", SK = sk })) end
  end)

  after_each(function()
    db:close()
    rmdir(dir)
  end)

  local function matches(expr)
    local out = {}
    for it in db:query("f", { filter = expr }) do out[#out + 1] = it.SK end
    return out
  end

  it("matches SK =~ /^a/ on string sort keys only (the seed's example)", function()
    assert.same({ "a1" }, matches("SK =~ /^a/"))
    assert.same({ 1, 2, "1", "a1", "b1" }, matches("SK =~ /1/ or SK < 3"))
  end)

  it("tells the number 1 from the string \"1\"", function()
    assert.same({ 1 }, matches("SK == 1"))
    assert.same({ "1" }, matches("SK == '1'"))
    assert.same({ 2, "1", "a1", "b1" }, matches("SK != 1"))
  end)
end)
