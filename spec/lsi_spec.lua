-- Local secondary indexes: a partition in an alternate sort order, kept in
-- step with every write, defined only when the database is created.

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

describe("a local secondary index", function()
  local dir, db

  before_each(function()
    dir = tmpdir()
    db = assert(dynafile.open(dir, {
      sync = "off",
      lsi = { by_score = { sk = "score" }, by_name = { sk = "name", projection = "keys" } },
    }))
    for i = 1, 10 do
      local name = string.char(string.byte("a") + 10 - i)
      db:put_item { PK = "p", SK = i, score = (i * 7) % 11, name = name }
    end
    db:put_item { PK = "other", SK = 1, score = 0, name = "zz" }
  end)

  after_each(function()
    if db then db:close() end
    rmdir(dir)
  end)

  local function sks(pk, opts)
    local out = {}
    for it in db:query(pk, opts) do out[#out + 1] = it.SK end
    return out
  end

  it("returns a partition in the alternate order", function()
    local scores = {}
    for it in db:query("p", { index = "by_score" }) do scores[#scores + 1] = it.score end
    assert.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, scores)
    assert.same({ 10, 9, 8, 7, 6, 5, 4, 3, 2, 1 }, sks("p", { index = "by_name" }))
    assert.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, sks("p"))
    assert.same({ 1 }, sks("other", { index = "by_score" }))
  end)

  it("takes key conditions on its sort key, in both directions, with limits and pages", function()
    local function scores(opts)
      local out = {}
      opts.index = "by_score"
      for it in db:query("p", opts) do out[#out + 1] = it.score end
      return out
    end
    assert.same({ 3, 4, 5 }, scores { between = { 3, 5 } })
    assert.same({ 10, 9 }, scores { scan_index_forward = false, limit = 2 })
    assert.same({ 1, 2 }, scores { lt = 3 })
    assert.same({ 8 }, scores { eq = 8 })
    local seen, start = {}, nil
    repeat
      local items, nk = db:query_page("p", { index = "by_score", limit = 3, start_after = start })
      for _, it in ipairs(items) do seen[#seen + 1] = it.score end
      start = nk
    until nk == nil
    assert.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, seen)
  end)

  it("projects keys only when asked", function()
    local items = db:query_page("p", { index = "by_name", limit = 1 })
    assert.same({ PK = "p", SK = 10, name = "a" }, items[1])
  end)

  it("moves an entry when its sort key changes and drops it when the attribute goes", function()
    db:update_item({ PK = "p", SK = 1 }, { set = { score = 100 } })
    local last
    for it in db:query("p", { index = "by_score" }) do last = it end
    assert.equal(1, last.SK)
    db:update_item({ PK = "p", SK = 1 }, { remove = { "score" } })
    assert.equal(9, #sks("p", { index = "by_score" }))
    db:delete_item { PK = "p", SK = 2 }
    assert.equal(8, #sks("p", { index = "by_score" }))
    backend.assert_checked(db)
  end)

  it("is left out for items without its sort attribute", function()
    db:put_item { PK = "q", SK = 1 }
    db:put_item { PK = "q", SK = 2, name = "n" }
    db:put_item { PK = "q", SK = 3, score = 4 }
    assert.same({ 3 }, sks("q", { index = "by_score" }))
    assert.same({ 1, 2, 3 }, sks("q"))
  end)

  it("refuses items whose sort attribute is of a type no key has", function()
    assert.error_matches(function() db:put_item { PK = "q", SK = 1, score = true } end,
      "Type mismatch for Index Key score Expected: S, N or B Actual: BOOL IndexName: by_score",
      1, true)
    assert.error_matches(function() db:put_item { PK = "q", SK = 2, score = { 1, 2 } } end,
      "Actual: L IndexName: by_score", 1, true)
    db:put_item { PK = "q", SK = 3, score = 4 }
    db:put_item { PK = "q", SK = 4 }
    assert.same({ 3 }, sks("q", { index = "by_score" }))
  end)

  it("can only be defined when the database is created", function()
    db:close()
    local d2, msg, code = dynafile.open(dir, { lsi = { late = { sk = "name" } } })
    assert.is_nil(d2)
    assert.equal("ValidationError", code)
    assert.matches("local index late can only be defined when the database is created", msg)
    db = assert(dynafile.open(dir))
    assert.is_nil(db:schema().indexes.late)
    assert.is_not_nil(db:schema().indexes.by_score)
  end)

  it("needs a table with a sort key", function()
    local d2 = tmpdir()
    local h, msg, code = dynafile.open(d2, { pk = "id", sk = false, lsi = { by_a = { sk = "a" } } })
    assert.is_nil(h)
    assert.equal("ValidationError", code)
    assert.matches("sort key", msg)
    rmdir(d2)
  end)

  it("survives reopening without options and stays maintained", function()
    db:close()
    db = assert(dynafile.open(dir))
    db:put_item { PK = "p", SK = 11, score = 0 }
    assert.equal(11, sks("p", { index = "by_score" })[1])
    backend.assert_checked(db)
  end)
end)
