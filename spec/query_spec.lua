-- Queries: key conditions on the sort key, each answered by one cursor
-- range in the B+tree, combined with scan_index_forward, starts_with,
-- limit, start_after and filter.
local dynafile = require "dynafile"

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  return p .. "-query"
end

local function rmdir(p)
  os.execute("rm -rf '" .. p .. "'")
end

local function sks(iter_or_list)
  local out = {}
  if type(iter_or_list) == "table" then
    for i, it in ipairs(iter_or_list) do out[i] = it.SK end
  else
    for it in iter_or_list do out[#out + 1] = it.SK end
  end
  return out
end

local function keys(fmt, from, to, step)
  local out = {}
  for i = from, to, step or 1 do out[#out + 1] = string.format(fmt, i) end
  return out
end

describe("query", function()
  local dir, db

  before_each(function()
    dir = tmpdir()
    db = assert(dynafile.open(dir, { pk = "PK", sk = "SK" }))
    db:batch_write(function(w)
      for i = 0, 99 do
        w:put_item({ PK = "p", SK = string.format("k%02d", i), n = i, odd = i % 2 == 1 })
      end
      -- neighbours whose keys sort right next to partition "p"
      for i = 0, 9 do
        w:put_item({ PK = "o", SK = string.format("k%02d", i), n = i })
        w:put_item({ PK = "p0", SK = string.format("k%02d", i), n = i })
        w:put_item({ PK = "q", SK = string.format("k%02d", i), n = i })
      end
      -- a prefix family
      for _, v in ipairs({ "a", "ab", "abc", "abd", "ac", "b" }) do
        w:put_item({ PK = "pre", SK = v })
      end
    end)
  end)

  after_each(function()
    db:close()
    rmdir(dir)
  end)

  it("returns a whole partition in sort-key order and nothing of its neighbours", function()
    assert.same(keys("k%02d", 0, 99), sks(db:query("p")))
    assert.same(keys("k%02d", 0, 9), sks(db:query("p0")))
  end)

  it("returns the one item with eq", function()
    assert.same({ "k42" }, sks(db:query("p", { eq = "k42" })))
    assert.same({}, sks(db:query("p", { eq = "k4" })))
    assert.same({}, sks(db:query("p", { eq = "zz" })))
  end)

  it("answers lt, le, gt and ge with strict and inclusive bounds", function()
    assert.same(keys("k%02d", 0, 2), sks(db:query("p", { lt = "k03" })))
    assert.same(keys("k%02d", 0, 3), sks(db:query("p", { le = "k03" })))
    assert.same(keys("k%02d", 97, 99), sks(db:query("p", { gt = "k96" })))
    assert.same(keys("k%02d", 96, 99), sks(db:query("p", { ge = "k96" })))
    -- bounds that fall between stored keys
    assert.same(keys("k%02d", 0, 3), sks(db:query("p", { lt = "k035" })))
    assert.same(keys("k%02d", 0, 3), sks(db:query("p", { le = "k035" })))
    assert.same(keys("k%02d", 4, 99), sks(db:query("p", { gt = "k035" })))
    assert.same(keys("k%02d", 4, 99), sks(db:query("p", { ge = "k035" })))
    -- bounds beyond either end
    assert.same({}, sks(db:query("p", { lt = "k00" })))
    assert.same({}, sks(db:query("p", { gt = "k99" })))
    assert.same(keys("k%02d", 0, 99), sks(db:query("p", { ge = "a" })))
  end)

  it("includes both ends of between and is empty when lo > hi", function()
    assert.same(keys("k%02d", 10, 19), sks(db:query("p", { between = { "k10", "k19" } })))
    assert.same({ "k10" }, sks(db:query("p", { between = { "k10", "k10" } })))
    assert.same({}, sks(db:query("p", { between = { "k19", "k10" } })))
    assert.same(keys("k%02d", 0, 99), sks(db:query("p", { between = { "a", "z" } })))
  end)

  it("returns the items whose sort key starts with begins_with", function()
    assert.same(keys("k%02d", 50, 59), sks(db:query("p", { begins_with = "k5" })))
    assert.same({ "a", "ab", "abc", "abd", "ac" }, sks(db:query("pre", { begins_with = "a" })))
    assert.same({ "ab", "abc", "abd" }, sks(db:query("pre", { begins_with = "ab" })))
    assert.same({ "abc" }, sks(db:query("pre", { begins_with = "abc" })))
    assert.same({}, sks(db:query("pre", { begins_with = "abcd" })))
  end)

  it("walks every key condition backwards with scan_index_forward = false", function()
    local function rev(t)
      local out = {}
      for i = #t, 1, -1 do out[#out + 1] = t[i] end
      return out
    end
    local conds = {
      { eq = "k42" }, { lt = "k03" }, { le = "k03" }, { gt = "k96" }, { ge = "k96" },
      { between = { "k10", "k19" } }, { begins_with = "k5" }, {},
    }
    for _, c in ipairs(conds) do
      local fwd = sks(db:query("p", c))
      c.scan_index_forward = false
      assert.same(rev(fwd), sks(db:query("p", c)))
    end
    assert.same({ "abd", "abc", "ab" },
      sks(db:query("pre", { begins_with = "ab", scan_index_forward = false })))
  end)

  it("starts at starts_with, inclusive, in the direction of travel", function()
    assert.same(keys("k%02d", 95, 99), sks(db:query("p", { starts_with = "k95" })))
    assert.same(keys("k%02d", 4, 0, -1),
      sks(db:query("p", { starts_with = "k04", scan_index_forward = false })))
    -- a start between stored keys
    assert.same(keys("k%02d", 96, 99), sks(db:query("p", { starts_with = "k955" })))
    assert.same(keys("k%02d", 95, 90, -1),
      sks(db:query("p", { starts_with = "k955", scan_index_forward = false, ge = "k90" })))
    -- combined with a key condition: the intersection
    assert.same(keys("k%02d", 55, 59),
      sks(db:query("p", { begins_with = "k5", starts_with = "k55" })))
    assert.same(keys("k%02d", 55, 50, -1),
      sks(db:query("p", { begins_with = "k5", starts_with = "k55", scan_index_forward = false })))
    assert.same({}, sks(db:query("p", { begins_with = "k5", starts_with = "k60" })))
  end)

  it("stops after limit items, counted after the filter", function()
    assert.same(keys("k%02d", 0, 2), sks(db:query("p", { limit = 3 })))
    assert.same(keys("k%02d", 99, 97, -1),
      sks(db:query("p", { limit = 3, scan_index_forward = false })))
    assert.same({ "k51", "k53" },
      sks(db:query("p", { begins_with = "k5", filter = "odd == true", limit = 2 })))
    assert.same({ "k59", "k57" }, sks(db:query("p", {
      begins_with = "k5", limit = 2, scan_index_forward = false,
      filter = function(it) return it.odd end,
    })))
    -- a limit above the matches returns them all
    assert.same(keys("k%02d", 50, 59), sks(db:query("p", { begins_with = "k5", limit = 1000 })))
  end)

  it("resumes after start_after, forwards and backwards, inside the key condition", function()
    local after = { PK = "p", SK = "k55" }
    assert.same(keys("k%02d", 56, 59),
      sks(db:query("p", { begins_with = "k5", start_after = after })))
    assert.same(keys("k%02d", 54, 50, -1), sks(db:query("p", {
      begins_with = "k5", start_after = after, scan_index_forward = false,
    })))
    assert.same(keys("k%02d", 56, 57), sks(db:query("p", { start_after = after, limit = 2 })))
    assert.same(keys("k%02d", 54, 53, -1), sks(db:query("p", {
      start_after = after, limit = 2, scan_index_forward = false,
    })))
    -- the key need not exist
    assert.same({ "k56" },
      sks(db:query("p", { start_after = { PK = "p", SK = "k555" }, limit = 1 })))
    assert.same({ "k55" }, sks(db:query("p", {
      start_after = { PK = "p", SK = "k555" }, limit = 1, scan_index_forward = false,
    })))
    -- a resume point beyond the range leaves nothing
    assert.same({},
      sks(db:query("p", { begins_with = "k5", start_after = { PK = "p", SK = "k60" } })))
    assert.same({}, sks(db:query("p", { start_after = { PK = "p", SK = "k99" } })))
    assert.same({},
      sks(db:query("p", { start_after = { PK = "p", SK = "k00" }, scan_index_forward = false })))
  end)

  it("combines start_after with starts_with: the tighter bound wins", function()
    assert.same(keys("k%02d", 81, 83), sks(db:query("p", {
      starts_with = "k70", start_after = { PK = "p", SK = "k80" }, limit = 3,
    })))
    assert.same(keys("k%02d", 70, 72), sks(db:query("p", {
      starts_with = "k70", start_after = { PK = "p", SK = "k20" }, limit = 3,
    })))
  end)

  it("filters with an expression string or a Lua function", function()
    assert.same({ "k97", "k98", "k99" }, sks(db:query("p", { filter = "n > 96" })))
    assert.same({ "k10", "k12" }, sks(db:query("p", {
      between = { "k10", "k13" }, filter = function(it) return it.n % 2 == 0 end,
    })))
    assert.same({ "k13", "k11" }, sks(db:query("p", {
      between = { "k10", "k13" }, filter = "odd == true", scan_index_forward = false,
    })))
  end)

  it("visits only the entries of a 10-item range in a 100-item partition", function()
    local conds = {
      { begins_with = "k4" }, { between = { "k40", "k49" } }, { ge = "k90" }, { gt = "k89" },
      { lt = "k10" }, { le = "k09" },
    }
    for _, c in ipairs(conds) do
      for _, forward in ipairs({ true, false }) do
        c.scan_index_forward = forward
        local stats = {}
        c.stats = stats
        local n = 0
        for _ in db:query("p", c) do n = n + 1 end
        assert.equal(10, n)
        assert.equal(10, stats.examined)
        assert.equal(10, stats.decoded)
        assert.equal(1, stats.pages)
      end
    end
    local stats = {}
    for _ in db:query("p", { eq = "k42", stats = stats }) do end
    assert.equal(1, stats.examined)
  end)

  it("visits only the entries of a 10-item range in a 10,000-item partition", function()
    db:batch_write(function(w)
      for i = 0, 9999 do w:put_item({ PK = "big", SK = string.format("s%05d", i) }) end
    end)
    local stats = {}
    local got = sks(db:query("big", { begins_with = "s0421", stats = stats }))
    assert.same(keys("s%05d", 4210, 4219), got)
    assert.equal(10, stats.examined)
    got = sks(db:query("big",
      { between = { "s09990", "s09999" }, scan_index_forward = false, stats = stats }))
    assert.equal(10, #got)
    assert.equal(10, stats.examined)
    -- with a limit the walk stops at the limit
    sks(db:query("big", { limit = 5, stats = stats }))
    assert.equal(5, stats.examined)
  end)


  it("counts examined entries that the filter rejects, but decodes only matches", function()
    local stats = {}
    local got = sks(db:query("p", { begins_with = "k1", filter = "n == 13", stats = stats }))
    assert.same({ "k13" }, got)
    assert.equal(10, stats.examined)
    assert.equal(1, stats.decoded)
  end)

  it("can be called on its own and stops cleanly on break", function()
    local it = db:query("p", { begins_with = "k7" })
    assert.equal("k70", it().SK)
    assert.equal("k71", it().SK)
    for item in db:query("p") do
      if item.SK == "k03" then break end
    end
    -- the database stays writable after an abandoned loop
    assert.truthy(db:put_item({ PK = "p", SK = "new" }))
  end)

  it("lets the loop write to the database while it runs", function()
    local seen = 0
    for item in db:query("p", { begins_with = "k1" }) do
      seen = seen + 1
      assert.truthy(db:put_item({ PK = "p", SK = item.SK .. "x", n = -1 }))
      assert.truthy(db:delete_item({ PK = "p", SK = string.format("k%02d", item.n + 50) }))
    end
    assert.equal(10, seen)
    assert.equal(20, #sks(db:query("p", { begins_with = "k1" })))
    assert.same({}, sks(db:query("p", { begins_with = "k6" })))
  end)

  it("raises on misuse", function()
    assert.has_error(function() db:query("p", { eq = "a", lt = "b" }) end,
      "dynafile.query: only one key condition allowed (eq and lt)")
    assert.error_matches(function() for _ in db:query("p", { begins_with = 5 }) do end end,
      "begins_with must be a string")
    assert.error_matches(function() db:query("p", { between = { 1 } }) end,
      "between must be a list")
    assert.error_matches(function() db:query("p", { between = 1 }) end, "between must be a list")
    assert.error_matches(function() db:query("p", { bogus = 1 }) end, "unknown option 'bogus'")
    assert.error_matches(function() db:query("p", { limit = 0 }) end,
      "limit must be a positive integer")
    assert.error_matches(function() db:query("p", { limit = 1.5 }) end,
      "limit must be a positive integer")
    assert.error_matches(function() db:query("p", { start_after = "k1" }) end,
      "start_after must be a key table")
    assert.error_matches(function() db:query("p", { eq = 0 / 0 }) end, "NaN")
    assert.error_matches(function() db:query({}) end, "partition key must be a string or a number")
    assert.error_matches(function() db:query("p", { scan_index_forward = "no" }) end,
      "scan_index_forward must be a boolean")
    assert.error_matches(function() db:query("p", { stats = 1 }) end, "stats must be a table")
    assert.error_matches(function() db:query("p", "x") end, "options must be a table")
    -- judged when the iterator is made, before any page is read (plain
    -- strings and numbers skip the binding's check; these may not)
    assert.error_matches(function() db:query(0 / 0) end, "partition key must not be NaN")
    assert.error_matches(function() db:query(nil) end, "partition key")
    assert.error_matches(function() db:query("p", { start_after = { PK = "p", SK = print } }) end,
      "start_after.*SK.*function")
    assert.error_matches(function() db:query("p", { index = "nope" }) end, "no index named nope")
    assert.error_matches(function() db:scan({ start_after = { PK = print } }) end,
      "dynafile.scan: start_after")
  end)
end)

describe("query on numeric sort keys", function()
  local dir, db

  before_each(function()
    dir = tmpdir()
    db = assert(dynafile.open(dir, { pk = "PK", sk = "SK" }))
    for _, v in ipairs({ 100, 2.5, -5, 10, 2, 1 }) do
      assert(db:put_item({ PK = "num", SK = v }))
    end
  end)

  after_each(function()
    db:close()
    rmdir(dir)
  end)

  it("compares numeric sort keys numerically, integers and floats together", function()
    assert.same({ -5, 1, 2, 2.5, 10, 100 }, sks(db:query("num")))
    assert.same({ 2 }, sks(db:query("num", { eq = 2.0 })))
    assert.same({ 2.5, 10, 100 }, sks(db:query("num", { gt = 2 })))
    assert.same({ -5, 1, 2 }, sks(db:query("num", { lt = 2.5 })))
    assert.same({ 1, 2, 2.5, 10 }, sks(db:query("num", { between = { 0.5, 10 } })))
    assert.same({ 100, 10, 2.5 }, sks(db:query("num", { ge = 2.5, scan_index_forward = false })))
  end)

  it("answers key conditions on index sort keys with a cursor range too", function()
    local idir = tmpdir()
    local idb = assert(dynafile.open(idir, {
      pk = "PK", sk = "SK",
      gsi = { by_group = { pk = "group", sk = "name" } },
      lsi = { by_name = { sk = "name" } },
    }))
    idb:batch_write(function(w)
      for i = 0, 99 do
        -- the index sort key order is the reverse of the table's
        w:put_item({ PK = "p", SK = i, group = "g", name = string.format("n%02d", 99 - i) })
      end
    end)
    for _, index in ipairs({ "by_group", "by_name" }) do
      local pk = index == "by_group" and "g" or "p"
      for _, forward in ipairs({ true, false }) do
        local stats = {}
        local names = {}
        for it in idb:query(pk, { index = index, begins_with = "n4", stats = stats,
                                  scan_index_forward = forward }) do
          names[#names + 1] = it.name
        end
        assert.equal(10, #names)
        assert.equal(forward and "n40" or "n49", names[1])
        assert.equal(10, stats.examined)
      end
      -- resuming after an index key, backwards, inside the condition
      local got = {}
      for it in idb:query(pk, {
        index = index, between = { "n10", "n19" }, scan_index_forward = false,
        start_after = { PK = "p", SK = 84, group = "g", name = "n15" },
      }) do
        got[#got + 1] = it.name
      end
      assert.same({ "n14", "n13", "n12", "n11", "n10" }, got)
    end
    idb:close()
    rmdir(idir)
  end)
end)

describe("query on one sort key attribute holding numbers and strings", function()
  local dir, db

  before_each(function()
    dir = tmpdir()
    db = assert(dynafile.open(dir, { pk = "PK", sk = "SK" }))
    for _, v in ipairs({ "b", 100, "", 2.5, -5, "a" }) do
      assert(db:put_item({ PK = "mix", SK = v }))
    end
  end)

  after_each(function()
    db:close()
    rmdir(dir)
  end)

  it("puts every number before every string, a string bound above every number", function()
    assert.same({ -5, 2.5, 100, "", "a", "b" }, sks(db:query("mix")))
    assert.same({ -5, 2.5, 100 }, sks(db:query("mix", { lt = "" })))
    assert.same({ "", "a", "b" }, sks(db:query("mix", { ge = "" })))
    assert.same({ 100, "", "a" }, sks(db:query("mix", { between = { 3, "a" } })))
  end)

  it("treats an empty string as a valid sort key and bound", function()
    assert.same({ "" }, sks(db:query("mix", { eq = "" })))
    assert.same({ "", "a", "b" }, sks(db:query("mix", { begins_with = "" })))
    assert.same({ "b", "a", "" },
      sks(db:query("mix", { begins_with = "", scan_index_forward = false })))
  end)
end)
