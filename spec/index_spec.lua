-- Global secondary indexes: every write path keeps them in step, sparse
-- entries, queries and scans with every option, projections, paging
-- through duplicates, drop_index, and schema rules.

local dynafile = require "dynafile"
local backend = dofile("spec/support/backend.lua")

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  return p
end

local function rmdir(p)
  os.execute("rm -rf '" .. p .. "'")
end

local GSI = {
  by_type = { pk = "type", sk = "n" },
  by_owner = { pk = "owner" },
}

-- The table keys (PK|SK) of an index query, in order.
local function keys_of(iter)
  local out = {}
  for item in iter do out[#out + 1] = item.PK .. "|" .. tostring(item.SK) end
  return out
end

local function q(db, pk, opts)
  opts = opts or {}
  opts.index = opts.index or "by_type"
  return keys_of(db:query(pk, opts))
end

describe("a global secondary index", function()
  local dir, db

  before_each(function()
    dir = tmpdir()
    db = assert(dynafile.open(dir, { sync = "off", gsi = GSI }))
  end)

  after_each(function()
    if db then db:close() end
    rmdir(dir)
  end)

  local function assert_consistent()
    backend.assert_checked(db)
  end

  it("finds items by the index key, ordered by the index sort key", function()
    db:put_item { PK = "a", SK = 1, type = "t", n = 3 }
    db:put_item { PK = "b", SK = 1, type = "t", n = 1 }
    db:put_item { PK = "c", SK = 1, type = "t", n = 4 }
    db:put_item { PK = "d", SK = 1, type = "u", n = 2 }
    assert.same({ "b|1", "a|1", "c|1" }, q(db, "t"))
    assert.same({ "c|1", "a|1", "b|1" }, q(db, "t", { scan_index_forward = false }))
    assert.same({ "d|1" }, q(db, "u"))
    assert.same({}, q(db, "none"))
    assert_consistent()
  end)

  it("orders items with equal index keys by the table key", function()
    db:put_item { PK = "c", SK = 1, type = "t", n = 3 }
    db:put_item { PK = "a", SK = 2, type = "t", n = 3 }
    db:put_item { PK = "b", SK = 1, type = "t", n = 1 }
    db:put_item { PK = "a", SK = 1, type = "t", n = 3 }
    assert.same({ "b|1", "a|1", "a|2", "c|1" }, q(db, "t"))
    assert.same({ "c|1", "a|2", "a|1", "b|1" }, q(db, "t", { scan_index_forward = false }))
  end)

  it("follows put, replace and delete", function()
    db:put_item { PK = "a", SK = 1, type = "t", n = 1 }
    db:put_item { PK = "a", SK = 1, type = "u", n = 1 }
    assert.same({}, q(db, "t"))
    assert.same({ "a|1" }, q(db, "u"))
    db:delete_item { PK = "a", SK = 1 }
    assert.same({}, q(db, "u"))
    backend.assert_counts(db, { index_entries = 0 })
    assert_consistent()
  end)

  it("moves the entry when an update changes the index key", function()
    db:put_item { PK = "a", SK = 1, type = "t", n = 1 }
    db:update_item({ PK = "a", SK = 1 }, { set = { type = "u" } })
    assert.same({}, q(db, "t"))
    assert.same({ "a|1" }, q(db, "u"))
    db:update_item({ PK = "a", SK = 1 }, { add = { n = 10 } })
    assert.same({ "a|1" }, q(db, "u", { eq = 11 }))
    assert.same({}, q(db, "u", { eq = 1 }))
    db:update_item({ PK = "a", SK = 1 }, function(old)
      old.type = "v"
      return old
    end)
    assert.same({}, q(db, "u"))
    assert.same({ "a|1" }, q(db, "v"))
    assert_consistent()
  end)

  it("removes the entry when an update removes the index attribute", function()
    db:put_item { PK = "a", SK = 1, type = "t", n = 1, owner = "o" }
    db:update_item({ PK = "a", SK = 1 }, { remove = { "n" } })
    assert.same({}, q(db, "t"))
    assert.same({ "a|1" }, q(db, "o", { index = "by_owner" }))
    db:update_item({ PK = "a", SK = 1 }, { remove = { "owner" } })
    assert.same({}, q(db, "o", { index = "by_owner" }))
    backend.assert_counts(db, { index_entries = 0 })
    assert_consistent()
  end)

  it("leaves out items lacking the key attributes", function()
    assert(db:put_item { PK = "a", SK = 1, type = "t" }) -- no n
    assert(db:put_item { PK = "b", SK = 1, n = 1 }) -- no type
    assert(db:put_item { PK = "g", SK = 1, type = "t", n = 1 })
    assert.same({ "g|1" }, q(db, "t"))
    backend.assert_counts(db, { index_entries = 1 })
    assert_consistent()
  end)

  it("refuses a write whose index key attribute is of a type no key has, as DynamoDB", function()
    db:put_item { PK = "g", SK = 1, type = "t", n = 1 }
    local bad = {
      { v = { PK = "c", SK = 1, type = true, n = 1 }, attr = "type", actual = "BOOL" },
      { v = { PK = "d", SK = 1, type = "t", n = { 1 } }, attr = "n", actual = "L" },
      { v = { PK = "e", SK = 1, type = { x = 1 }, n = 1 }, attr = "type", actual = "M" },
      { v = { PK = "f", SK = 1, type = "t", n = dynafile.null }, attr = "n", actual = "NULL" },
      { v = { PK = "h", SK = 1, type = dynafile.set { "a" }, n = 1 }, attr = "type",
        actual = "SS" },
    }
    for _, b in ipairs(bad) do
      local ok, err = pcall(db.put_item, db, b.v)
      assert.is_false(ok)
      assert.matches("One or more parameter values were invalid: Type mismatch for Index Key "
        .. b.attr .. " Expected: S, N or B Actual: " .. b.actual .. " IndexName: by_type",
        err, 1, true)
      assert.is_nil(db:get_item { PK = b.v.PK, SK = 1 })
    end
    -- an update that would give the key a wrong type is refused too
    local ok, err = pcall(db.update_item, db, { PK = "g", SK = 1 }, { set = { n = true } })
    assert.is_false(ok)
    assert.matches("Type mismatch for Index Key n", err, 1, true)
    assert.equal(1, db:get_item({ PK = "g", SK = 1 }).n)
    -- binary values are keys
    assert(db:put_item { PK = "i", SK = 1, type = "t", n = dynafile.binary("\0\1") })
    assert.same({ "g|1", "i|1" }, q(db, "t"))
    backend.assert_counts(db, { index_entries = 2 })
    assert_consistent()
  end)

  it("is maintained by batch writes", function()
    db:batch_write(function(w)
      for i = 1, 50 do w:put_item { PK = "p" .. i, SK = 0, type = "t", n = i } end
      w:delete_item { PK = "p3", SK = 0 }
      w:put_item { PK = "p4", SK = 0, type = "u", n = 4 }
    end)
    local got = q(db, "t")
    assert.equal(48, #got)
    assert.same({ "p4|0" }, q(db, "u"))
    assert_consistent()
  end)

  it("is maintained by transactions and transact_write_items", function()
    db:put_item { PK = "x", SK = 0, type = "t", n = 1 }
    db:transaction(function(tx)
      tx:put_item { PK = "y", SK = 0, type = "t", n = 2 }
      tx:update_item({ PK = "x", SK = 0 }, { set = { type = "u" } })
    end)
    assert.same({ "y|0" }, q(db, "t"))
    assert.same({ "x|0" }, q(db, "u"))
    assert(db:transact_write_items {
      { put = { PK = "z", SK = 0, type = "t", n = 0 } },
      { delete = { PK = "y", SK = 0 } },
      { update = { PK = "x", SK = 0 }, changes = { set = { n = 5 } } },
    })
    assert.same({ "z|0" }, q(db, "t"))
    assert.same({ "x|0" }, q(db, "u", { eq = 5 }))
    assert_consistent()
  end)

  it("is left untouched by a transaction that fails", function()
    db:put_item { PK = "x", SK = 0, type = "t", n = 1 }
    local before = db:stat().index_entries
    assert.has_error(function()
      db:transaction(function(tx)
        tx:put_item { PK = "y", SK = 0, type = "t", n = 2 }
        tx:update_item({ PK = "x", SK = 0 }, { set = { type = "u" } })
        error("abandon")
      end)
    end)
    local ok, _, code = db:transact_write_items {
      { put = { PK = "z", SK = 0, type = "t", n = 3 } },
      { delete = { PK = "x", SK = 0 }, condition = "n == 99" },
    }
    assert.is_nil(ok)
    assert.equal("TransactionCanceled", code)
    local ok2, _, code2 = db:put_item({ PK = "x", SK = 0, type = "w", n = 9 },
      { condition = "n == 42" })
    assert.is_nil(ok2)
    assert.equal("ConditionalCheckFailed", code2)
    assert.same({ "x|0" }, q(db, "t"))
    assert.same({}, q(db, "u"))
    assert.same({}, q(db, "w"))
    assert.equal(before, db:stat().index_entries)
    assert_consistent()
  end)

  it("drops the entries of items that TTL purges", function()
    db:close()
    rmdir(dir)
    -- times near the present: a server deleting expired items by its own
    -- clock keeps them
    local t0 = os.time()
    local now = t0 + 1000
    db = assert(dynafile.open(dir, { ttl = "exp", gsi = GSI, clock = function() return now end }))
    db:put_item { PK = "a", SK = 0, type = "t", n = 1, exp = t0 + 1500 }
    db:put_item { PK = "b", SK = 0, type = "t", n = 2, exp = t0 + 5000 }
    assert.same({ "a|0", "b|0" }, q(db, "t"))
    now = t0 + 2000
    assert.same({ "b|0" }, q(db, "t")) -- hidden at once
    db:purge_expired()
    backend.assert_counts(db, { items = 1, index_entries = 1 })
    assert_consistent()
  end)

  it("hides expired items from projected index queries that leave the TTL out", function()
    db:close()
    rmdir(dir)
    local t0 = os.time() -- (see above)
    local now = t0 + 1000
    db = assert(dynafile.open(dir, {
      ttl = "exp", clock = function() return now end,
      gsi = { keys_only = { pk = "type", projection = "keys" } },
    }))
    db:put_item { PK = "a", SK = 0, type = "t", exp = t0 + 1500 }
    db:put_item { PK = "b", SK = 0, type = "t", exp = t0 + 5000 }
    assert.same({ "a|0", "b|0" }, keys_of(db:query("t", { index = "keys_only" })))
    now = t0 + 2000
    assert.same({ "b|0" }, keys_of(db:query("t", { index = "keys_only" })))
    local items = db:query_page("t", { index = "keys_only" })
    assert.is_nil(items[1].exp) -- the projection holds keys only
  end)

  it("accepts every key condition on the index sort key, both directions", function()
    for i = 1, 20 do db:put_item { PK = "p" .. i, SK = 0, type = "t", n = i } end
    local function ns(opts)
      local out = {}
      opts.index = "by_type"
      for it in db:query("t", opts) do out[#out + 1] = it.n end
      return out
    end
    assert.same({ 5 }, ns { eq = 5 })
    assert.same({ 1, 2 }, ns { lt = 3 })
    assert.same({ 1, 2, 3 }, ns { le = 3 })
    assert.same({ 19, 20 }, ns { gt = 18 })
    assert.same({ 18, 19, 20 }, ns { ge = 18 })
    assert.same({ 7, 8, 9 }, ns { between = { 7, 9 } })
    assert.same({ 9, 8, 7 }, ns { between = { 7, 9 }, scan_index_forward = false })
    assert.same({ 20, 19, 18 }, ns { limit = 3, scan_index_forward = false })
    assert.same({ 10, 11, 12 }, ns { starts_with = 10, limit = 3 })
    assert.same({ 2, 4 }, ns { filter = "n < 5 and n > 1 and n != 3" })
    assert.same({ 4, 8 }, ns { filter = function(it) return it.n % 4 == 0 end, limit = 2 })
  end)

  it("takes begins_with on a string index sort key", function()
    db:close()
    rmdir(dir)
    db = assert(dynafile.open(dir, { gsi = { by_name = { pk = "g", sk = "name" } } }))
    for _, name in ipairs { "apple", "apricot", "banana", "ap", "b" } do
      db:put_item { PK = name, SK = 0, g = "x", name = name }
    end
    local got = {}
    for it in db:query("x", { index = "by_name", begins_with = "ap" }) do
      got[#got + 1] = it.name
    end
    assert.same({ "ap", "apple", "apricot" }, got)
  end)

  it("scans an index, in segments that cover it exactly once", function()
    for i = 1, 300 do db:put_item { PK = "p" .. i, SK = 0, type = "t" .. (i % 17), n = i } end
    for i = 1, 20 do db:put_item { PK = "q" .. i, SK = 0 } end -- not in the index
    local all = {}
    for it in db:scan { index = "by_type" } do all[#all + 1] = it.PK end
    assert.equal(300, #all)
    local seen, total = {}, 0
    for k = 1, 4 do
      for it in db:scan { index = "by_type", segment = k, segments = 4 } do
        assert.is_nil(seen[it.PK])
        seen[it.PK] = true
        total = total + 1
      end
    end
    assert.equal(300, total)
    local f = 0
    for _ in db:scan { index = "by_type", filter = "n <= 10" } do f = f + 1 end
    assert.equal(10, f)
  end)

  it("pages through 1,000 items sharing one index key, returning each exactly once", function()
    db:batch_write(function(w)
      for i = 1, 1000 do w:put_item { PK = "p" .. i, SK = i % 3, type = "same", n = 7 } end
    end)
    for _, forward in ipairs { true, false } do
      local seen, count, start, pages = {}, 0, nil, 0
      repeat
        local items, nk = db:query_page("same", {
          index = "by_type", limit = 37, start_after = start, scan_index_forward = forward,
        })
        pages = pages + 1
        for _, it in ipairs(items) do
          local k = it.PK .. "|" .. it.SK
          assert.is_nil(seen[k], "repeated " .. k)
          seen[k] = true
          count = count + 1
        end
        start = nk
      until nk == nil
      assert.equal(1000, count)
      assert.is_true(pages >= 28)
    end
    -- next_key carries the index key and the table key
    local _, nk = db:query_page("same", { index = "by_type", limit = 5 })
    assert.equal("same", nk.type)
    assert.equal(7, nk.n)
    assert.is_not_nil(nk.PK)
    assert.is_not_nil(nk.SK)
  end)

  it("projects keys only, or the listed attributes plus the keys", function()
    db:close()
    rmdir(dir)
    db = assert(dynafile.open(dir, { gsi = {
      keys_only = { pk = "g", sk = "s", projection = "keys" },
      listed = { pk = "g", projection = { "color", "size" } },
      all_attributes = { pk = "g", projection = "all" },
    } }))
    db:put_item { PK = "a", SK = 1, g = "x", s = 5, color = "red", size = 3, other = "y" }
    local k = db:query_page("x", { index = "keys_only" })[1]
    assert.same({ PK = "a", SK = 1, g = "x", s = 5 }, k)
    local l = db:query_page("x", { index = "listed" })[1]
    assert.same({ PK = "a", SK = 1, g = "x", color = "red", size = 3 }, l)
    local a = db:query_page("x", { index = "all_attributes" })[1]
    assert.same({ PK = "a", SK = 1, g = "x", s = 5, color = "red", size = 3, other = "y" }, a)
    db:update_item({ PK = "a", SK = 1 }, { set = { color = "blue" } })
    assert.equal("blue", db:query_page("x", { index = "listed" })[1].color)
    assert.equal("blue", db:query_page("x", { index = "all_attributes" })[1].color)
    -- a string filter sees the projected attributes
    assert.equal(1, #db:query_page("x", { index = "listed", filter = "color == \"blue\"" }))
    assert.equal(0, #db:query_page("x", { index = "listed", filter = "other == \"y\"" }))
  end)

  it("keeps its definitions when the database is reopened without options", function()
    db:put_item { PK = "a", SK = 1, type = "t", n = 1 }
    db:close()
    db = assert(dynafile.open(dir))
    assert.is_not_nil(db:schema().indexes.by_type)
    assert.equal("type", db:schema().indexes.by_type.pk)
    db:put_item { PK = "b", SK = 1, type = "t", n = 2 }
    assert.same({ "a|1", "b|1" }, q(db, "t"))
    assert_consistent()
  end)

  it("refuses a changed definition with a clear error", function()
    db:close()
    local d2, msg, code = dynafile.open(dir, { gsi = { by_type = { pk = "type", sk = "other" } } })
    assert.is_nil(d2)
    assert.equal("ValidationError", code)
    assert.matches("index by_type is defined differently", msg)
    local d3, msg3 = dynafile.open(dir,
      { gsi = { by_type = { pk = "type", sk = "n", projection = "keys" } } })
    assert.is_nil(d3)
    assert.matches("by_type", msg3)
    db = assert(dynafile.open(dir))
  end)

  it("refuses a write whose index sort key cannot fit, naming attribute and index", function()
    db:put_item { PK = "a", SK = 1, type = "t", n = 1 }
    local before = db:stat().index_entries
    local ok, err = pcall(db.put_item, db,
      { PK = "b", SK = 1, type = "t", n = string.rep("x", 1025) })
    assert.is_false(ok)
    assert.matches("attribute n", err)
    assert.matches("index by_type", err)
    assert.is_nil(db:get_item { PK = "b", SK = 1 })
    assert.equal(before, db:stat().index_entries)
    -- a 1,024-byte sort key fits (DynamoDB's limit)
    assert(db:put_item { PK = "b", SK = 1, type = "t", n = string.rep("x", 1024) })
    assert_consistent()
  end)

  it("accepts index partition keys up to 2048 bytes", function()
    local long = string.rep("k", 2048)
    assert(db:put_item { PK = "a", SK = 1, owner = long })
    assert(db:put_item { PK = "b", SK = 1, owner = long .. "" })
    assert(db:put_item { PK = "c", SK = 1, owner = string.rep("k", 2047) .. "j" })
    local got = q(db, long, { index = "by_owner" })
    table.sort(got)
    assert.same({ "a|1", "b|1" }, got)
    local ok, err = pcall(db.put_item, db, { PK = "d", SK = 1, owner = long .. "k" })
    assert.is_false(ok)
    assert.matches("owner", err)
    assert_consistent()
  end)

  it("drops an index: entries deleted, definition gone, queries refused", function()
    for i = 1, 100 do db:put_item { PK = "p" .. i, SK = 0, type = "t", n = i, owner = "o" } end
    backend.assert_counts(db, { index_entries = 200 })
    assert.is_true(dynafile.drop_index(db, "by_type"))
    backend.assert_counts(db, { index_entries = 100 })
    assert.is_nil(db:schema().indexes.by_type)
    assert.has_error(function() db:query("t", { index = "by_type" }) end)
    assert.has_error(function() db:drop_index("by_type") end)
    db:put_item { PK = "new", SK = 0, type = "t", n = 1, owner = "o" }
    backend.assert_counts(db, { index_entries = 101 })
    assert.equal(101, #q(db, "o", { index = "by_owner" }))
    assert_consistent()
    db:close()
    db = assert(dynafile.open(dir))
    assert.is_nil(db:schema().indexes.by_type)
    assert.is_not_nil(db:schema().indexes.by_owner)
  end)

  it("builds a new index under a dropped one's name from the items", function()
    for i = 1, 100 do db:put_item { PK = "p" .. i, SK = 0, type = "t", n = i, owner = "o" } end
    assert.is_true(db:drop_index("by_type"))
    db:close()
    db = assert(dynafile.open(dir, { gsi = { by_type = { pk = "owner", projection = "keys" } } }))
    local got = q(db, "o")
    assert.equal(100, #got)
    assert.same({ PK = "p1", SK = 0, owner = "o" }, db:query_page("o", { index = "by_type",
      filter = "PK == 'p1'" })[1])
    assert_consistent()
  end)

  it("is kept in step when another process adds and drops indexes", function()
    db:put_item { PK = "a", SK = 0, type = "t", n = 1, owner = "o" }
    -- another process drops by_type and adds by_n while this handle is open
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write(string.format([[
      local dynafile = require "dynafile"
      local db = assert(dynafile.open(%q, { gsi = { by_n = { pk = "n" } } }))
      assert(db:drop_index("by_type"))
      db:close()
    ]], dir))
    f:close()
    -- the interpreter the module under test was built for
    local build = package.cpath:match("build/([%w%.]+)/") or "lua5.4"
    local rc = os.execute(string.format(
      'LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/%s/?.so;;" %s %s',
      build, build, script))
    assert.is_true(rc == true or rc == 0)
    os.remove(script)
    -- this handle's next write follows the stored schema
    db:put_item { PK = "b", SK = 0, type = "t", n = 1, owner = "o" }
    db:delete_item { PK = "a", SK = 0 }
    db:close()
    db = assert(dynafile.open(dir))
    assert.is_nil(db:schema().indexes.by_type)
    assert.same({ "b|0" }, keys_of(db:query(1, { index = "by_n" })))
    assert_consistent()
  end)
end)
