-- Time to live: `ttl = "attr"` (epoch seconds, integer or float) or
-- `ttl = function(item, now)`, with the `clock` option.  Expired items are
-- invisible to every read from the moment they expire, and deleted (DELETE
-- event, expired = true) by purge_expired and by write paths, never by a
-- read.
local dynafile = require "dynafile"
local backend = dofile("spec/support/backend.lua")

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  return p .. "-ttl"
end

local function rmdir(p)
  os.execute("rm -rf '" .. p .. "'")
end

local function count(iter)
  local n = 0
  for _ in iter do n = n + 1 end
  return n
end

local function sks(iter)
  local out = {}
  for it in iter do out[#out + 1] = it.SK end
  table.sort(out)
  return out
end

-- Every way of reading partition "p": the sorted sort keys each one sees.
local function visible(db)
  local views = {}
  views.query = sks(db:query("p"))
  local scanned = {}
  for it in db:scan() do
    if it.PK == "p" then scanned[#scanned + 1] = it.SK end
  end
  table.sort(scanned)
  views.scan = scanned
  local items = assert(db:query_page("p"))
  local paged = {}
  for _, it in ipairs(items) do paged[#paged + 1] = it.SK end
  views.query_page = paged
  items = assert(db:scan_page({ limit = 1000 }))
  paged = {}
  for _, it in ipairs(items) do
    if it.PK == "p" then paged[#paged + 1] = it.SK end
  end
  table.sort(paged)
  views.scan_page = paged
  local got = {}
  for sk = 1, 9 do
    if db:get_item({ PK = "p", SK = sk }) then got[#got + 1] = sk end
  end
  views.get_item = got
  local keys = {}
  for sk = 1, 9 do keys[sk] = { PK = "p", SK = sk } end
  got = {}
  for sk, it in ipairs(assert(db:batch_get_item(keys))) do
    if it then got[#got + 1] = sk end
  end
  views.batch_get_item = got
  return views
end

local function all_views(list)
  return {
    query = list, scan = list, query_page = list, scan_page = list,
    get_item = list, batch_get_item = list,
  }
end

describe("TTL", function()
  local dir, db, now, events, listener

  local function open(opts)
    opts.pk, opts.sk = "PK", "SK"
    opts.clock = opts.clock or function() return now end
    db = assert(dynafile.open(dir, opts))
    events = {}
    listener = db:add_stream_listener(function(ev) events[#events + 1] = ev end)
  end

  before_each(function()
    dir = tmpdir()
    now = 1000
  end)

  after_each(function()
    -- listeners belong to the database, not to the handle
    if db and listener then db:remove_stream_listener(listener) end
    if db then db:close() end
    listener = nil
    db = nil
    rmdir(dir)
  end)

  describe("as an attribute", function()
    -- times near the present (T0 + ...): a server that deletes expired
    -- items by its own clock keeps these until the simulated clock says so
    local T0 = os.time()

    before_each(function()
      now = T0 + 1000
      open({ ttl = "expires" })
      assert(db:put_item({ PK = "p", SK = 1, expires = T0 + 1100 }))   -- integer
      assert(db:put_item({ PK = "p", SK = 2, expires = T0 + 1200.5 })) -- float
      assert(db:put_item({ PK = "p", SK = 3 }))                        -- none
      assert(db:put_item({ PK = "p", SK = 4, expires = "1050" }))      -- not a number
      assert(db:put_item({ PK = "p", SK = 5, expires = T0 + 2000 }))
      events = {}
    end)

    it("hides an item from every read from the moment its TTL is below now", function()
      assert.same(all_views({ 1, 2, 3, 4, 5 }), visible(db))
      now = T0 + 1100 -- equal: not yet expired
      assert.same(all_views({ 1, 2, 3, 4, 5 }), visible(db))
      now = T0 + 1100.001
      assert.same(all_views({ 2, 3, 4, 5 }), visible(db))
      now = T0 + 1200.5
      assert.same(all_views({ 2, 3, 4, 5 }), visible(db))
      now = T0 + 1200.75 -- a float TTL compares as a float
      assert.same(all_views({ 3, 4, 5 }), visible(db))
      now = T0 + 1e7 -- items without a numeric TTL never expire
      assert.same(all_views({ 3, 4 }), visible(db))
    end)

    it("never deletes in a read: the items come back when the clock goes back", function()
      now = T0 + 5000
      assert.same(all_views({ 3, 4 }), visible(db))
      assert.same({}, events)
      backend.assert_counts(db, { items = 5 })
      now = T0 + 1000
      assert.same(all_views({ 1, 2, 3, 4, 5 }), visible(db))
    end)

    it("checks the TTL in C, without turning expired items into tables", function()
      now = T0 + 5000
      local stats = {}
      assert.equal(2, count(db:query("p", { stats = stats })))
      assert.equal(5, stats.examined)
      assert.equal(2, stats.decoded)
      assert.equal(2, count(db:scan({ stats = stats })))
      assert.equal(2, stats.decoded)
    end)

    it("purges expired items with DELETE events marked expired", function()
      now = T0 + 1150
      assert.equal(1, db:purge_expired())
      assert.equal(1, #events)
      assert.equal("DELETE", events[1].action)
      assert.is_true(events[1].expired)
      assert.equal(1, events[1].old.SK)
      assert.is_nil(events[1].new)
      backend.assert_counts(db, { items = 4 })
      assert.equal(0, db:purge_expired())
      now = T0 + 1e7 -- later, within five years of every TTL
      assert.equal(2, db:purge_expired())
      assert.equal(3, #events)
      now = 0
      assert.same(all_views({ 3, 4 }), visible(db))
    end)

    it("purges at most `limit` items, the earliest first", function()
      now = T0 + 1e7 -- later, within five years of every TTL
      assert.equal(1, db:purge_expired(1))
      assert.equal(1, events[1].old.SK)
      assert.equal(1, db:purge_expired(1))
      assert.equal(2, events[2].old.SK)
      assert.equal(1, db:purge_expired(5))
      assert.equal(5, events[3].old.SK)
      assert.equal(0, db:purge_expired(5))
      assert.error_matches(function() db:purge_expired(0) end, "limit must be a positive integer")
    end)

    it("is deleted by later write paths, with events", function()
      now = T0 + 1150
      assert(db:put_item({ PK = "q", SK = 1 }))
      assert.equal("DELETE", events[1].action)
      assert.is_true(events[1].expired)
      assert.equal(1, events[1].old.SK)
      assert.equal("PUT", events[2].action)
      now = 0
      assert.same(all_views({ 2, 3, 4, 5 }), visible(db))
    end)

    it("is deleted by write paths that take the fast path (no listener)", function()
      db:remove_stream_listener(listener)
      listener = nil
      db:close()
      db = assert(dynafile.open(dir, { clock = function() return now end }))
      now = T0 + 1e7 -- later, within five years of every TTL
      assert(db:put_item({ PK = "q", SK = 1 }))
      assert.equal(3, db:stat().items) -- q/1 and the two that never expire
      assert(db:put_item({ PK = "p", SK = 9, expires = T0 }))
      assert(db:delete_item({ PK = "q", SK = 1 }))
      assert.equal(2, db:stat().items)
    end)

    it("is purged by the batch writer, update_item, delete_item and transactions", function()
      now = T0 + 1150 -- SK 1 expired
      db:batch_write(function(w) w:put_item({ PK = "q", SK = 1 }) end)
      assert.equal(4, db:stat().items - 1)
      now = T0 + 1300 -- SK 2 expired
      assert(db:update_item({ PK = "q", SK = 1 }, { set = { x = 1 } }))
      assert.equal(4, db:stat().items)
      assert(db:put_item({ PK = "p", SK = 7, expires = T0 + 1400 }))
      now = T0 + 1500
      assert(db:delete_item({ PK = "q", SK = 1 }))
      assert.equal(3, db:stat().items)
      assert(db:put_item({ PK = "p", SK = 8, expires = T0 + 1600 }))
      now = T0 + 1700
      db:transaction(function(tx) tx:put_item({ PK = "q", SK = 2 }) end)
      assert.equal(4, db:stat().items)
      local expired = 0
      for _, ev in ipairs(events) do
        if ev.expired then
          expired = expired + 1
          assert.equal("DELETE", ev.action)
        end
      end
      assert.equal(4, expired)
    end)

    it("treats an expired item as absent when it is overwritten", function()
      now = T0 + 1150
      local ok, old = db:put_item({ PK = "p", SK = 1, v = 2 }, { return_old = true })
      assert.is_true(ok)
      assert.is_nil(old)
      assert.equal("DELETE", events[1].action)
      assert.is_true(events[1].expired)
      assert.equal("PUT", events[2].action)
      assert.is_nil(events[2].old)
      assert.equal(2, db:get_item({ PK = "p", SK = 1 }).v)
      -- a condition sees the expired item as missing
      now = T0 + 1300
      assert(db:put_item({ PK = "p", SK = 2, v = 3 }, { condition = "not exists(SK)" }))
    end)

    it("is kept in the stored schema", function()
      db:close()
      db = assert(dynafile.open(dir, { clock = function() return now end }))
      assert.equal("expires", db:schema().ttl)
      now = T0 + 5000
      assert.same(all_views({ 3, 4 }), visible(db))
    end)

    it("never expires an item whose TTL is more than five years past, as DynamoDB", function()
      local five_years = 5 * 365 * 24 * 3600
      assert(db:put_item({ PK = "p", SK = 6, expires = T0 }))
      assert.is_nil(db:get_item({ PK = "p", SK = 6 })) -- past, within five years
      now = T0 + five_years -- exactly five years: still expired
      assert.is_nil(db:get_item({ PK = "p", SK = 6 }))
      now = T0 + five_years + 1 -- further: never expires, never purged
      assert.truthy(db:get_item({ PK = "p", SK = 6 }))
      assert.equal(3, db:purge_expired()) -- SK 1, 2 and 5, not SK 6
      for _, ev in ipairs(events) do assert.are_not.equal(6, ev.old and ev.old.SK) end
      assert.truthy(db:get_item({ PK = "p", SK = 6 }))
      -- a real clock: exp = 0, a common "never", does not make an item vanish
      db:close()
      db = assert(dynafile.open(dir))
      assert(db:put_item({ PK = "p", SK = 8, expires = 0 }))
      assert(db:put_item({ PK = "p", SK = 9, expires = os.time() - 10 }))
      assert.truthy(db:get_item({ PK = "p", SK = 8 }))
      assert.is_nil(db:get_item({ PK = "p", SK = 9 }))
      db:purge_expired()
      assert.truthy(db:get_item({ PK = "p", SK = 8 }))
    end)

    it("uses os.time without a clock", function()
      db:close()
      db = assert(dynafile.open(dir))
      assert(db:put_item({ PK = "p", SK = 6, expires = os.time() - 10 }))
      assert(db:put_item({ PK = "p", SK = 7, expires = os.time() + 3600 }))
      assert.is_nil(db:get_item({ PK = "p", SK = 6 }))
      assert.truthy(db:get_item({ PK = "p", SK = 7 }))
    end)
  end)

  describe("as a function", function()
    local calls

    before_each(function()
      calls = {}
      open({
        ttl = function(item, t)
          calls[#calls + 1] = t
          return item.exp ~= nil and item.exp < t
        end,
      })
      assert(db:put_item({ PK = "p", SK = 1, exp = 1100 }))
      assert(db:put_item({ PK = "p", SK = 2, exp = 1200.5 }))
      assert(db:put_item({ PK = "p", SK = 3 }))
      events = {}
    end)

    it("hides items the function finds expired from every read", function()
      assert.same(all_views({ 1, 2, 3 }), visible(db))
      now = 1150
      assert.same(all_views({ 2, 3 }), visible(db))
      now = 1300
      assert.same(all_views({ 3 }), visible(db))
      assert.same({}, events)
      now = 0
      assert.same(all_views({ 1, 2, 3 }), visible(db))
    end)

    it("receives the clock's time", function()
      now = 4242
      calls = {}
      db:get_item({ PK = "p", SK = 1 })
      assert.same({ 4242 }, calls)
    end)

    it("applies inside pages with a limit, keeping next_key exact", function()
      now = 1150
      local items, nk = db:query_page("p", { limit = 1 })
      assert.same(2, items[1].SK)
      assert.same({ PK = "p", SK = 2 }, nk)
      items, nk = db:query_page("p", { limit = 1, start_after = nk })
      assert.same(3, items[1].SK)
      assert.is_nil(nk)
      now = 1300
      items, nk = db:query_page("p", { limit = 1 })
      assert.same(3, items[1].SK)
      assert.is_nil(nk)
    end)

    it("purges what it finds expired, with events, up to the limit", function()
      now = 1e12
      assert.equal(1, db:purge_expired(1))
      assert.equal(1, #events)
      assert.is_true(events[1].expired)
      assert.equal("DELETE", events[1].action)
      assert.equal(1, db:purge_expired())
      assert.equal(0, db:purge_expired())
      now = 0
      assert.same(all_views({ 3 }), visible(db))
    end)

    it("is deleted when a write path meets it", function()
      now = 1150
      assert(db:put_item({ PK = "p", SK = 1, v = 1 }))
      assert.equal("DELETE", events[1].action)
      assert.is_true(events[1].expired)
      assert.equal("PUT", events[2].action)
      assert.is_nil(events[2].old)
      now = 1300
      assert(db:delete_item({ PK = "p", SK = 2 }))
      assert.equal(3, #events)
      assert.is_true(events[3].expired)
    end)
  end)

  it("rejects a ttl that is neither a name nor a function, and a clock that is not a function",
    function()
    assert.error_matches(function() dynafile.open(dir, { ttl = 5 }) end,
      "ttl must be an attribute name or a function")
    assert.error_matches(function() dynafile.open(dir, { ttl = "" }) end,
      "ttl must be an attribute name or a function")
    assert.error_matches(function() dynafile.open(dir, { clock = 5 }) end,
      "clock must be a function")
  end)

  it("makes purge_expired a no-op without a TTL", function()
    open({})
    assert(db:put_item({ PK = "p", SK = 1, expires = 1 }))
    assert.equal(0, db:purge_expired())
    assert.truthy(db:get_item({ PK = "p", SK = 1 }))
  end)
end)
