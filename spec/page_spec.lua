-- Pages: query_page and scan_page return items and next_key; feeding
-- next_key back as start_after continues exactly where the page stopped,
-- with no item skipped or repeated, even when items are written or deleted
-- between pages.
local dynafile = require "dynafile"

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  return p .. "-page"
end

local function rmdir(p)
  os.execute("rm -rf '" .. p .. "'")
end

-- Every page of a query (pk given) or a scan, until next_key is nil.
-- Returns the list of items and the number of calls.
local function all_pages(db, pk, opts, between)
  local out, calls, nk = {}, 0, nil
  repeat
    local o = {}
    for k, v in pairs(opts) do o[k] = v end
    o.start_after = nk
    local items
    if pk ~= nil then items, nk = db:query_page(pk, o) else items, nk = db:scan_page(o) end
    assert(items, nk)
    calls = calls + 1
    for _, it in ipairs(items) do out[#out + 1] = it end
    if between and nk then between(nk, calls) end
    assert(calls < 100000, "paging does not end")
  until nk == nil
  return out, calls
end

local function field(list, name)
  local out = {}
  for i, it in ipairs(list) do out[i] = it[name] end
  return out
end

describe("pages", function()
  local dir, db

  before_each(function()
    dir = tmpdir()
    db = assert(dynafile.open(dir, { pk = "PK", sk = "SK" }))
    db:batch_write(function(w)
      for i = 1, 250 do w:put_item({ PK = "p", SK = i, even = i % 2 == 0 }) end
      for i = 1, 50 do w:put_item({ PK = "other" .. (i % 5), SK = i }) end
    end)
  end)

  after_each(function()
    db:close()
    rmdir(dir)
  end)

  local function range(a, b, step)
    local out = {}
    for i = a, b, step or 1 do out[#out + 1] = i end
    return out
  end

  it("holds up to 100 items without a limit and ends with a nil next_key", function()
    local items, nk = db:query_page("p")
    assert.equal(100, #items)
    assert.same({ PK = "p", SK = 100 }, nk)
    local got, calls = all_pages(db, "p", {})
    assert.same(range(1, 250), field(got, "SK"))
    assert.equal(3, calls)
    items, nk = db:query_page("other1")
    assert.equal(10, #items)
    assert.is_nil(nk)
  end)

  it("gives a next_key holding only the key attributes", function()
    local _, nk = db:query_page("p", { limit = 2 })
    assert.same({ PK = "p", SK = 2 }, nk)
  end)

  it("returns every item exactly once whatever the page size, forwards and backwards", function()
    for _, limit in ipairs({ 1, 3, 7, 100, 249, 250, 251 }) do
      assert.same(range(1, 250), field(all_pages(db, "p", { limit = limit }), "SK"))
      assert.same(range(250, 1, -1),
        field(all_pages(db, "p", { limit = limit, scan_index_forward = false }), "SK"))
    end
  end)

  it("pages through a key condition", function()
    assert.same(range(100, 150),
      field(all_pages(db, "p", { between = { 100, 150 }, limit = 7 }), "SK"))
    assert.same(range(150, 100, -1), field(all_pages(db, "p", {
      between = { 100, 150 }, limit = 7, scan_index_forward = false,
    }), "SK"))
    assert.same(range(241, 250), field(all_pages(db, "p", { gt = 240, limit = 3 }), "SK"))
    assert.same(range(200, 1, -1), field(all_pages(db, "p", {
      starts_with = 200, limit = 9, scan_index_forward = false,
    }), "SK"))
  end)

  it("pages through a Lua function filter with a limit, stopping mid-page", function()
    local f = function(it) return it.even end
    for _, limit in ipairs({ 1, 3, 40, 100 }) do
      assert.same(range(2, 250, 2), field(all_pages(db, "p", { filter = f, limit = limit }), "SK"))
      assert.same(range(250, 2, -2), field(all_pages(db, "p", {
        filter = f, limit = limit, scan_index_forward = false,
      }), "SK"))
    end
    -- a page that stops inside a C page resumes after its last item
    local items, nk = db:query_page("p", { filter = f, limit = 3 })
    assert.same({ 2, 4, 6 }, field(items, "SK"))
    assert.same({ PK = "p", SK = 6 }, nk)
  end)

  it("pages through a filter string with a limit", function()
    for _, limit in ipairs({ 1, 7, 100 }) do
      assert.same(range(2, 250, 2),
        field(all_pages(db, "p", { filter = "even == true", limit = limit }), "SK"))
      assert.same(range(225, 250),
        field(all_pages(db, "p", { filter = "SK > 224", limit = limit }), "SK"))
    end
  end)

  it("may return an empty page before the end, and still ends", function()
    -- the page is full before the walk reaches the end of the range, so
    -- it cannot know yet that nothing else matches
    local items, nk = db:query_page("p", { filter = "SK == 249", limit = 1 })
    assert.same({ 249 }, field(items, "SK"))
    assert.same({ PK = "p", SK = 249 }, nk)
    items, nk = db:query_page("p", { filter = "SK == 249", limit = 1, start_after = nk })
    assert.same({}, items)
    assert.is_nil(nk)
    -- when the walk sees the end of the range, next_key is nil at once
    items, nk = db:query_page("p", { start_after = { PK = "p", SK = 248 }, limit = 5 })
    assert.same({ 249, 250 }, field(items, "SK"))
    assert.is_nil(nk)
  end)

  it("scans the whole table in pages, each item once", function()
    local got = all_pages(db, nil, { limit = 13 })
    assert.equal(300, #got)
    local seen = {}
    for _, it in ipairs(got) do
      local k = it.PK .. "/" .. it.SK
      assert.is_nil(seen[k])
      seen[k] = true
    end
    got = all_pages(db, nil, { limit = 13, filter = function(it) return it.PK ~= "p" end })
    assert.equal(50, #got)
  end)

  it("resumes strictly after start_after, whether or not that item exists", function()
    local items = db:query_page("p", { start_after = { PK = "p", SK = 10 }, limit = 2 })
    assert.same({ 11, 12 }, field(items, "SK"))
    items = db:query_page("p", { start_after = { PK = "p", SK = 10.5 }, limit = 2 })
    assert.same({ 11, 12 }, field(items, "SK"))
    items = db:query_page("p",
      { start_after = { PK = "p", SK = 10 }, limit = 2, scan_index_forward = false })
    assert.same({ 9, 8 }, field(items, "SK"))
    -- extra attributes in the key table are ignored
    items = db:query_page("p", { start_after = { PK = "p", SK = 10, even = true }, limit = 1 })
    assert.same({ 11 }, field(items, "SK"))
  end)

  it("neither skips nor repeats when the next_key item is deleted between pages", function()
    local deletes = 0
    local got = all_pages(db, "p", { limit = 10 }, function(nk)
      assert.truthy(db:delete_item(nk))
      deletes = deletes + 1
    end)
    assert.same(range(1, 250), field(got, "SK"))
    assert.truthy(deletes >= 24)
    assert.equal(250 - deletes, #all_pages(db, "p", { limit = 1000 }))
  end)

  it("sees writes ahead of the resume point and not behind it, with no repeats", function()
    local ahead = {}
    local got = all_pages(db, "p", { limit = 10 }, function(nk)
      -- behind: just before the resume point; ahead: just after it
      assert.truthy(db:put_item({ PK = "p", SK = nk.SK - 1 / 1024, behind = true }))
      assert.truthy(db:put_item({ PK = "p", SK = nk.SK + 1 / 1024, ahead = true }))
      ahead[#ahead + 1] = nk.SK + 1 / 1024
      -- rewrite the item at the resume point and one not yet returned
      assert.truthy(db:put_item({ PK = "p", SK = nk.SK, behind = true }))
      assert.truthy(db:put_item({ PK = "p", SK = nk.SK + 3, rewritten = true }))
    end)
    local seen, prev = {}, -math.huge
    for _, it in ipairs(got) do
      assert.is_nil(seen[it.SK])
      assert.truthy(it.SK > prev)
      assert.is_nil(it.behind)
      seen[it.SK], prev = it, it.SK
    end
    for i = 1, 250 do assert.truthy(seen[i]) end
    for _, k in ipairs(ahead) do assert.truthy(seen[k]) end
    assert.truthy(#ahead >= 24)
    -- an item rewritten ahead of the resume point is read in its new form
    assert.truthy(seen[13].rewritten)
  end)

  it("keeps its promise under random writes and deletes between pages", function()
    math.randomseed(1234)
    local live = {}
    for i = 1, 250 do live[i] = true end
    local deleted = {}
    local got = all_pages(db, "p", { limit = 17, filter = "SK >= 0" }, function()
      for _ = 1, 5 do
        local k = math.random(1, 300)
        if math.random() < 0.5 then
          db:delete_item({ PK = "p", SK = k })
          if live[k] then deleted[k] = true end
          live[k] = nil
        else
          db:put_item({ PK = "p", SK = k })
          live[k] = true
        end
      end
    end)
    local seen, prev = {}, -math.huge
    for _, it in ipairs(got) do
      assert.is_nil(seen[it.SK], "repeated " .. it.SK)
      assert.truthy(it.SK > prev, "out of order")
      seen[it.SK], prev = true, it.SK
    end
    -- every original item never deleted was returned
    for i = 1, 250 do
      if not deleted[i] then assert.truthy(seen[i], "skipped " .. i) end
    end
  end)

  it("hides items expired by a TTL function and keeps paging past them", function()
    local t = 1000
    local tdir = tmpdir()
    local tdb = assert(dynafile.open(tdir, {
      pk = "PK", sk = "SK", ttl = function(item, now) return item.exp ~= nil and item.exp < now end,
      clock = function() return t end,
    }))
    tdb:batch_write(function(w)
      for i = 1, 50 do w:put_item({ PK = "p", SK = i, exp = (i % 3 == 0) and 500 or nil }) end
    end)
    local got = all_pages(tdb, "p", { limit = 4 })
    assert.equal(34, #got)
    for _, it in ipairs(got) do assert.is_true(it.SK % 3 ~= 0) end
    t = 0
    assert.equal(50, #all_pages(tdb, "p", { limit = 4 }))
    tdb:close()
    rmdir(tdir)
  end)

  it("pages through an index with a Lua filter and a limit, each item once", function()
    local idir = tmpdir()
    local idb = assert(dynafile.open(idir,
      { pk = "PK", sk = "SK", gsi = { by_kind = { pk = "kind", sk = "rank" } } }))
    idb:batch_write(function(w)
      -- ranks repeat, so the table key orders entries of one rank
      for i = 1, 300 do w:put_item({ PK = "p" .. (i % 7), SK = i, kind = "k", rank = i % 10 }) end
    end)
    for _, forward in ipairs({ true, false }) do
      local got = all_pages(idb, "k", {
        index = "by_kind", limit = 7, scan_index_forward = forward,
        filter = function(it) return it.SK % 2 == 0 end,
      })
      assert.equal(150, #got)
      local seen = {}
      for i, it in ipairs(got) do
        assert.is_nil(seen[it.SK])
        seen[it.SK] = true
        if i > 1 then
          local prev = got[i - 1]
          if forward then
            assert.truthy(prev.rank <= it.rank)
          else
            assert.truthy(prev.rank >= it.rank)
          end
        end
      end
    end
    idb:close()
    rmdir(idir)
  end)

  it("returns nil, message, code for a filter string that does not parse", function()
    local items, msg, code = db:query_page("p", { filter = "SK >" })
    assert.is_nil(items)
    assert.equal("ValidationError", code)
    assert.truthy(msg:find("column", 1, true))
    items, msg, code = db:scan_page({ filter = "(" })
    assert.is_nil(items)
    assert.equal("ValidationError", code)
    assert.truthy(msg:find("column 2", 1, true))
  end)

  it("raises on misuse of the page calls", function()
    assert.error_matches(function() db:query_page("p", { limit = -1 }) end,
      "limit must be a positive integer")
    assert.error_matches(function() db:scan_page({ segment = 1 }) end,
      "segment and segments go together")
    assert.error_matches(function() db:scan_page({ eq = 1 }) end, "unknown option 'eq'")
    assert.error_matches(function() db:query_page("p", { start_after = { PK = "p" } }) end, "SK")
  end)
end)
