-- The DynamoDB backend (dynafile.open("dynamodb://TABLE")) against dynalite
-- on a free 127.0.0.1 port: the local API, every DynamoDB type, the
-- optimistic path for Lua code, batches past DynamoDB's chunk sizes, TTL,
-- listeners, and what dynalite lacks (TransactWriteItems) reported as
-- NotSupported.
local dynafile = require "dynafile"
local dynalite = dofile("tests/js/dynalite.lua")

describe("the DynamoDB backend (dynalite)", function()
  local server, n = nil, 0
  setup(function()
    server = assert(dynalite.start())
  end)
  teardown(function()
    if server then server:stop() end
  end)

  local function open(opts, name)
    n = n + 1
    opts = opts or {}
    opts.endpoint = server.endpoint
    opts.region = "us-east-1"
    name = name or string.format("t%d_%d", n, os.time())
    return dynafile.open("dynamodb://" .. name, opts)
  end

  it("writes, reads and queries items as a local database does", function()
    local db = assert(open { pk = "PK", sk = "SK" })
    local profile = { PK = "u#1", SK = "profile", name = "Ada", langs = { "lua", "c" } }
    assert.is_true(db:put_item(profile))
    assert(db:put_item({ PK = "u#1", SK = "order#1", total = 12.5, status = "shipped" }))
    assert(db:put_item({ PK = "u#1", SK = "order#2", total = 80, status = "pending" }))
    assert.same({ PK = "u#1", SK = "profile", name = "Ada", langs = { "lua", "c" } },
      db:get_item({ PK = "u#1", SK = "profile" }))
    assert.is_nil(db:get_item({ PK = "u#2", SK = "profile" }))
    local sks = {}
    for o in db:query("u#1", { begins_with = "order#", scan_index_forward = false }) do
      sks[#sks + 1] = o.SK
    end
    assert.same({ "order#2", "order#1" }, sks)
    sks = {}
    for o in db:scan({ filter = 'status == "pending" and total >= 50' }) do sks[#sks + 1] = o.SK end
    assert.same({ "order#2" }, sks)
    -- a filter on the sort key runs here (DynamoDB refuses key attributes
    -- in a query's filter)
    sks = {}
    for o in db:query("u#1", { filter = 'begins_with(SK, "order#") and total > 20' }) do
      sks[#sks + 1] = o.SK
    end
    assert.same({ "order#2" }, sks)
    db:close()
  end)

  it("counts limit after the filter and pages with next_key", function()
    local db = assert(open { pk = "PK", sk = "SK" })
    for i = 1, 30 do
      assert(db:put_item({ PK = "p", SK = string.format("%02d", i), odd = i % 2 }))
    end
    local page, nk = db:query_page("p", { limit = 4, filter = "odd == 1" })
    assert.equal(4, #page)
    assert.equal("07", page[4].SK)
    assert.same({ PK = "p", SK = "07" }, nk)
    page = db:query_page("p", { limit = 4, filter = function(it) return it.odd == 1 end,
      start_after = nk })
    assert.same({ "09", "11", "13", "15" }, { page[1].SK, page[2].SK, page[3].SK, page[4].SK })
    local all, key = {}, nil
    repeat
      page, key = db:scan_page({ limit = 7, start_after = key })
      for _, it in ipairs(page) do all[#all + 1] = it.SK end
    until key == nil
    assert.equal(30, #all)
    local seen = 0
    for _ in db:query("p", { limit = 5 }) do seen = seen + 1 end
    assert.equal(5, seen)
    local got = {}
    for it in db:query("p", { between = { "10", "12" } }) do got[#got + 1] = it.SK end
    assert.same({ "10", "11", "12" }, got)
    db:close()
  end)

  it("reads back every DynamoDB type exactly", function()
    local db = assert(open { pk = "PK", sk = "SK" })
    local item = {
      PK = "t", SK = "1", s = "", n = 42, f = 0.1, neg = -3.25,
      d = dynafile.decimal("12345678901234567890123456789012345678"),
      tiny = dynafile.decimal("1e-130"), b = dynafile.binary("\0\1\255"), yes = true,
      no = false, null = dynafile.null, ss = dynafile.set { "a", "b" },
      ns = dynafile.set { 1, 2.5 }, bs = dynafile.set { dynafile.binary("x") },
      l = { 1, "two", { three = 3 } }, empty_l = dynafile.array {}, empty_m = {},
      m = { deep = { deeper = { "x" } } },
    }
    assert(db:put_item(item))
    local got = db:get_item({ PK = "t", SK = "1" })
    for k, v in pairs(item) do
      assert.equal(dynafile.type(v), dynafile.type(got[k]), k)
      if dynafile.type(v) == "N" or dynafile.type(v) == "B" then
        assert.equal(dynafile.number_string and dynafile.type(v) == "N" and
          dynafile.number_string(v) or v, dynafile.type(v) == "N" and
          dynafile.number_string(got[k]) or got[k], k)
      end
    end
    assert.same(item.l, got.l)
    assert.same(item.m, got.m)
    assert.equal(tostring(item.d), tostring(got.d))
    assert.is_true(got.ss:contains("a") and got.ss:contains("b"))
    db:close()
  end)

  it("updates with tables of changes and with functions, under conditions", function()
    local db = assert(open { pk = "PK", sk = "SK" })
    local key = { PK = "o", SK = "2" }
    assert(db:put_item({ PK = "o", SK = "2", status = "pending", tags = { "a" } }))
    local new = db:update_item(key, { set = { status = "shipped", ["ship.carrier"] = "post" },
      add = { version = 1 } }, { condition = 'status == "pending"' })
    assert.equal("shipped", new.status)
    assert.equal("post", new.ship.carrier)
    assert.equal(1, new.version)
    local ok, msg, code = db:update_item(key, { set = { status = "lost" } },
      { condition = 'status == "pending"' })
    assert.is_nil(ok)
    assert.equal("ConditionalCheckFailed", code)
    assert.matches("condition failed", msg)
    -- list add/delete and functions run here, on the item read
    new = db:update_item(key, { add = { tags = { "b", "a" } } })
    assert.same({ "a", "b" }, new.tags)
    new = db:update_item(key, function(old)
      old.count = (old.count or 0) + 1
      old.tags = nil
      return old
    end)
    assert.equal(1, new.count)
    assert.is_nil(db:get_item(key).tags)
    local kept
    new, kept = db:update_item(key, { remove = { "ship" } }, { return_old = true })
    assert.equal("post", kept.ship.carrier)
    assert.is_nil(new.ship)
    db:close()
  end)

  it("runs a condition function on the item as read and redoes it when the item changed", function()
    local db = assert(open { pk = "PK", sk = "SK" })
    local name = db:schema().table
    local other = assert(open({ pk = "PK", sk = "SK" }, name))
    assert(db:put_item({ PK = "c", SK = "1", n = 1 }))
    local calls = 0
    local ok = db:put_item({ PK = "c", SK = "1", n = 10 }, { condition = function(old)
      calls = calls + 1
      if calls == 1 then
        -- another client writes between our read and our write (from
        -- another coroutine: this one may not write while its condition
        -- runs)
        coroutine.wrap(function() assert(other:put_item({ PK = "c", SK = "1", n = 2 })) end)()
      end
      return old ~= nil and old.n < 5
    end })
    assert.is_true(ok)
    assert.equal(2, calls) -- the first decision was made on a stale item: made again
    assert.equal(10, db:get_item({ PK = "c", SK = "1" }).n)
    local r, _, code = db:put_item({ PK = "c", SK = "1", n = 11 },
      { condition = function(old) return old.n < 5 end })
    assert.is_nil(r)
    assert.equal("ConditionalCheckFailed", code)
    -- an update function meets a concurrent change to a nested value
    calls = 0
    assert(db:put_item({ PK = "c", SK = "2", m = { a = { 1, 2 } } }))
    local new = db:update_item({ PK = "c", SK = "2" }, function(old)
      calls = calls + 1
      if calls == 1 then
        coroutine.wrap(function()
          assert(other:update_item({ PK = "c", SK = "2" }, { set = { ["m.a[1]"] = 3 } }))
        end)()
      end
      old.sum = old.m.a[1] + old.m.a[2]
      return old
    end)
    assert.equal(2, calls)
    assert.equal(4, new.sum)
    other:close()
    db:close()
  end)

  it("sends batches past 25 writes and 100 reads, last write on a key winning", function()
    local db = assert(open { pk = "PK", sk = "SK" })
    local events = 0
    local h = db:add_stream_listener(function() events = events + 1 end)
    assert(db:batch_write(function(w)
      for i = 1, 60 do w:put_item({ PK = "b", SK = tostring(i), v = i }) end
      w:put_item({ PK = "b", SK = "1", v = "again" })
      w:delete_item({ PK = "b", SK = "2" })
    end))
    assert.equal(62, events)
    db:remove_stream_listener(h)
    local keys = {}
    for i = 1, 130 do keys[i] = { PK = "b", SK = tostring(i) } end
    keys[131] = { PK = "b", SK = "1" }
    local got = assert(db:batch_get_item(keys))
    assert.equal(131, #got)
    assert.equal("again", got[1].v)
    assert.is_false(got[2])
    assert.equal(60, got[60].v)
    assert.is_false(got[61])
    assert.equal("again", got[131].v)
    db:close()
  end)

  it("tells listeners about this process's writes, with old and new items", function()
    local db = assert(open { pk = "PK", sk = "SK" })
    local seen = {}
    db:add_stream_listener(function(ev)
      seen[#seen + 1] = { ev.action, ev.old and ev.old.v or false, ev.new and ev.new.v or false }
    end)
    assert(db:put_item({ PK = "l", SK = "1", v = 1 }))
    assert(db:put_item({ PK = "l", SK = "1", v = 2 }))
    assert(db:update_item({ PK = "l", SK = "1" }, { set = { v = 3 } }))
    assert(db:delete_item({ PK = "l", SK = "1" }))
    assert(db:delete_item({ PK = "l", SK = "1" })) -- missing: no event
    assert.same({ { "PUT", false, 1 }, { "PUT", 1, 2 }, { "PUT", 2, 3 }, { "DELETE", 3, false } },
      seen)
    db:close()
  end)

  it("hides expired items and purges them with events", function()
    local now = 1000000
    local db = assert(open { pk = "PK", sk = "SK", ttl = "exp",
      clock = function() return now end })
    assert(db:put_item({ PK = "s", SK = "1", exp = now - 1 }))
    assert(db:put_item({ PK = "s", SK = "2", exp = now + 100 }))
    assert.is_nil(db:get_item({ PK = "s", SK = "1" }))
    assert.is_table(db:get_item({ PK = "s", SK = "2" }))
    assert.equal(1, #db:query_page("s"))
    local expired = {}
    db:add_stream_listener(function(ev)
      if ev.expired then expired[#expired + 1] = ev.old.SK end
    end)
    assert.equal(1, db:purge_expired())
    assert.same({ "1" }, expired)
    assert.equal("exp", db:schema().ttl)
    db:close()
  end)

  it("creates indexes from the options, checks them on reopen, and queries them", function()
    local db = assert(open { pk = "PK", sk = "SK",
      gsi = { by_status = { pk = "status", sk = "SK" } },
      lsi = { by_total = { sk = "total" } }, types = { total = "N" } })
    local name = db:schema().table
    assert(db:put_item({ PK = "u", SK = "o1", status = "open", total = 5 }))
    assert(db:put_item({ PK = "u", SK = "o2", status = "open", total = 1 }))
    local got = {}
    for it in db:query("open", { index = "by_status" }) do got[#got + 1] = it.SK end
    assert.same({ "o1", "o2" }, got)
    got = {}
    for it in db:query("u", { index = "by_total" }) do got[#got + 1] = it.SK end
    assert.same({ "o2", "o1" }, got)
    db:close()
    local ok, msg, code = open({ pk = "id" }, name)
    assert.is_nil(ok)
    assert.equal("ValidationError", code)
    assert.matches("pk is PK", msg)
    -- dynalite answers UpdateTable but never adds the index: a known gap
    -- of dynalite, reported rather than ignored (spec/remote_serve_spec.lua
    -- adds indexes on `dynafile serve`)
    ok, msg, code = open({ gsi = { by_amount = { pk = "total", projection = "keys" } } }, name)
    assert.is_nil(ok)
    assert.equal("NotSupported", code)
    assert.matches("did not create it", msg)
    db = assert(open(nil, name))
    assert.equal("lsi", db:schema().indexes.by_total.kind)
    local r, m, c = db:drop_index("by_total")
    assert.is_nil(r)
    assert.equal("NotSupported", c)
    assert.matches("local secondary index", m)
    db:close()
  end)

  it("takes dynafile.expr filters, conditions, updates and key conditions", function()
    local db = assert(open { pk = "PK", sk = "SK" })
    for i = 1, 6 do assert(db:put_item({ PK = "e", SK = "k" .. i, n = i, tags = { "a" } })) end
    local x = dynafile.expr
    local got = {}
    for it in db:query("e", { filter = x("#n BETWEEN :lo AND :hi", { ["#n"] = "n" },
      { [":lo"] = 2, [":hi"] = 4 }) }) do got[#got + 1] = it.n end
    assert.same({ 2, 3, 4 }, got)
    got = {}
    for it in db:query(x("PK = :p AND begins_with(SK, :k)", nil, { [":p"] = "e", [":k"] = "k5" }))
    do got[#got + 1] = it.SK end
    assert.same({ "k5" }, got)
    local new = db:update_item({ PK = "e", SK = "k1" },
      x("SET n = n + :one, tags = list_append(tags, :t) REMOVE gone",
        nil, { [":one"] = 10, [":t"] = { "b" } }),
      { condition = x("n = :v", nil, { [":v"] = 1 }) })
    assert.equal(11, new.n)
    assert.same({ "a", "b" }, new.tags)
    local ok, _, code = db:put_item({ PK = "e", SK = "k1" },
      { condition = x("attribute_not_exists(PK)") })
    assert.is_nil(ok)
    assert.equal("ConditionalCheckFailed", code)
    -- with a listener the write takes the optimistic path: the expression
    -- rides with the image check, and a false one is still reported as such
    local events = 0
    db:add_stream_listener(function() events = events + 1 end)
    ok, _, code = db:delete_item({ PK = "e", SK = "k2" }, { condition = x("n > :v", nil,
      { [":v"] = 100 }) })
    assert.is_nil(ok)
    assert.equal("ConditionalCheckFailed", code)
    assert.is_true(db:delete_item({ PK = "e", SK = "k2" }, { condition = x("n = :v", nil,
      { [":v"] = 2 }) }))
    assert.equal(1, events)
    assert.is_nil(db:get_item({ PK = "e", SK = "k2" }))
    db:close()
  end)

  it("sends projections as ProjectionExpressions and projects as a local database", function()
    local db = assert(open { pk = "PK", sk = "SK", ttl = "exp" })
    local dir = os.tmpname()
    os.remove(dir)
    local ldb = assert(dynafile.open(dir, { pk = "PK", sk = "SK", ttl = "exp" }))
    local item = { PK = "p", SK = "1", exp = 4e9, big = string.rep("x", 1000),
      m = { x = 1, y = { 1, 2, { z = 3 } } }, l = { "a", "b", "c" } }
    for _, d in ipairs { db, ldb } do
      assert(d:put_item(item))
      assert(d:put_item({ PK = "p", SK = "2", m = { x = 2 } }))
    end
    -- the requests this handle sends
    local sent = {}
    local client = db._client
    local call = client.call
    client.call = function(c, op, req, ...)
      sent[#sent + 1] = { op = op, req = req }
      return call(c, op, req, ...)
    end
    -- the names a request's ProjectionExpression reads, top-level first
    local function projected(req)
      local out = {}
      for ph in (req.ProjectionExpression or ""):gmatch("#[%w_]+") do
        out[#out + 1] = req.ExpressionAttributeNames[ph]
      end
      table.sort(out)
      return table.concat(out, " ")
    end
    local x = dynafile.expr
    local cases = {
      { "get_item", { PK = "p", SK = "1" }, { "m.y[2].z", "l[1]" }, "PK exp l m y" },
      { "get_item", { PK = "p", SK = "1" }, x("#m.x, big", { ["#m"] = "m" }), "PK big exp m x" },
      { "query_page", "p", { "m.x" }, "PK SK exp m x" },
      { "scan_page", nil, { "l[0]", "m.x" }, "PK SK exp l m x" },
    }
    for _, c in ipairs(cases) do
      sent = {}
      local fn, a, pj, want = c[1], c[2], c[3], c[4]
      local got, expect
      if fn == "get_item" then
        got, expect = db:get_item(a, { projection = pj }), ldb:get_item(a, { projection = pj })
      elseif fn == "query_page" then
        got, expect = db:query_page(a, { projection = pj }), ldb:query_page(a, { projection = pj })
      else
        got, expect = db:scan_page { projection = pj }, ldb:scan_page { projection = pj }
      end
      assert.same(expect, got)
      assert.equal(1, #sent)
      assert.equal(want, projected(sent[1].req))
    end
    -- batch_get_item asks for the whole key, to match items to keys
    sent = {}
    local keys = { { PK = "p", SK = "2" }, { PK = "p", SK = "1" } }
    assert.same(ldb:batch_get_item(keys, { projection = { "m.x" } }),
      db:batch_get_item(keys, { projection = { "m.x" } }))
    assert.equal("PK SK exp m x", projected(sent[1].req.RequestItems[db._table]))
    -- a Lua filter judges whole items: projected here, after it
    sent = {}
    local function f(it) return it.big ~= nil end
    assert.same(ldb:query_page("p", { filter = f, projection = { "m" } }),
      db:query_page("p", { filter = f, projection = { "m" } }))
    assert.is_nil(sent[1].req.ProjectionExpression)
    client.call = call
    db:close()
    ldb:close()
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("projects binary, sets, exact and 64-bit numbers, nested too, keeping their types", function()
    local db = assert(open { pk = "PK", sk = "SK" })
    local item = { PK = "p", SK = "1", b = dynafile.binary("\0\1\2"),
      d = dynafile.decimal("12345678901234567890.5"), ss = dynafile.set { "a", "b" },
      ns = dynafile.set { 1, 2 }, bs = dynafile.set { dynafile.binary("x") },
      big = dynafile.number("9223372036854775807"), s = "plain",
      m = { x = dynafile.binary("z"), l = { dynafile.set { "q" }, 7 } } }
    assert(db:put_item(item))
    local key = { PK = "p", SK = "1" }
    local whole = assert(db:get_item(key))
    for _, name in ipairs { "b", "d", "ss", "ns", "bs", "big", "s", "m" } do
      local got = assert(db:get_item(key, { projection = { name } }))
      assert.equal(dynafile.type(whole[name]), dynafile.type(got[name]), name)
      assert.same({ [name] = whole[name] }, got, name)
    end
    local got = assert(db:get_item(key, { projection = { "m.l[0]", "b" } }))
    assert.equal("SS", dynafile.type(got.m.l[1]))
    assert.same({ m = { l = { whole.m.l[1] } }, b = whole.b }, got)
    local page = assert(db:query_page("p",
      { projection = dynafile.expr("#m.x, ns", { ["#m"] = "m" }) }))
    assert.same({ { m = { x = whole.m.x }, ns = whole.ns } }, page)
    db:close()
  end)

  it("writes nothing when a transaction function returns nil, err; returns its values", function()
    local db = assert(open { pk = "PK", sk = "SK" })
    assert(db:put_item({ PK = "t", SK = "1", v = 1 }))
    local a, b, c = db:transaction(function(tx)
      local it = tx:get_item({ PK = "t", SK = "1" })
      tx:put_item({ PK = "t", SK = "1", v = it.v + 1 })
      tx:put_item({ PK = "t", SK = "2", v = 2 })
      return nil, "not now", { v = it.v }
    end)
    assert.is_nil(a)
    assert.equal("not now", b)
    assert.same({ v = 1 }, c)
    local d, e = db:transaction(function() return false, "no" end)
    assert.is_false(d)
    assert.equal("no", e)
    assert.same({ PK = "t", SK = "1", v = 1 }, db:get_item({ PK = "t", SK = "1" }))
    assert.is_nil(db:get_item({ PK = "t", SK = "2" }))
    db:close()
  end)

  it("sets and clears the TTL attribute on a server without UpdateTimeToLive (the "
      .. "client's own expiry), for every handle of the table", function()
    local name = string.format("ttl%d_%d", n + 1, os.time())
    local db = assert(open({ pk = "PK", sk = "SK" }, name))
    local other = assert(open({ pk = "PK", sk = "SK" }, name))
    assert(db:put_item { PK = "a", SK = "1", exp = os.time() - 60 })
    assert(db:put_item { PK = "b", SK = "1", exp = os.time() + 3600 })
    -- more than five years past: never expires (DynamoDB's rule, as locally)
    assert(db:put_item { PK = "c", SK = "1", exp = os.time() - 6 * 365 * 24 * 3600 })
    assert.is_true(db:set_ttl("exp"))
    assert.is_table(db:get_item { PK = "c", SK = "1" })
    assert.equal("exp", db:schema().ttl)
    assert.equal("exp", other:schema().ttl)
    assert.is_nil(db:get_item { PK = "a", SK = "1" })
    assert.is_nil(other:get_item { PK = "a", SK = "1" })
    assert.is_true(db:set_ttl(false))
    assert.is_nil(other:schema().ttl)
    assert.is_table(other:get_item { PK = "a", SK = "1" })
    assert.is_true(db:set_ttl("exp"))
    assert.equal(1, other:purge_expired())
    assert.is_table(db:get_item { PK = "c", SK = "1" })
    assert.equal(2, #(db:scan_page()))
    assert.has_error(function() db:set_ttl(7) end,
      "dynafile.set_ttl: name must be an attribute name or false, got number")
    other:close()
    db:close()
  end)

  it("reads keys of any characters (get_item writes its request as JSON text)", function()
    local db = assert(open { pk = "PK", sk = "SK", types = { PK = "S", SK = "S" } })
    for _, k in ipairs { "plain", "quo\"te", "back\\slash", "nl\nx", "tab\t", "uni\195\169",
        "sl/ash", "\1", "\127x", "{\"S\":\"x\"}" } do
      assert(db:put_item { PK = k, SK = k .. "!", v = k })
      local it = assert(db:get_item { PK = k, SK = k .. "!" }, k)
      assert.equal(k, it.v)
      assert.is_nil(db:get_item { PK = k, SK = k .. "?" })
    end
    db:close()
  end)

  it("refuses what it cannot do with NotSupported and a reason", function()
    local db = assert(open { pk = "PK", sk = "SK" })
    local ok, msg, code = db:transact_write_items({ { put = { PK = "x", SK = "1" } } })
    assert.is_nil(ok)
    assert.equal("NotSupported", code)
    assert.matches("TransactWriteItems", msg)
    assert.equal("NotSupported", select(3, db:poll_stream()))
    assert.equal("NotSupported", select(3, db:read_stream()))
    assert.equal("NotSupported", select(3, db:check()))
    ok, msg, code = db:scan_page({ filter = "name =~ /^a/" })
    assert.is_nil(ok)
    assert.equal("NotSupported", code)
    assert.matches("regular expressions", msg)
    ok, msg, code = dynafile.open("dynamodb://abc", { endpoint = server.endpoint, sync = "off" })
    assert.is_nil(ok)
    assert.equal("NotSupported", code)
    assert.matches("option sync", msg)
    for _, opt in ipairs { "flush_ms", "checkpoint_bytes", "map_size", "prefetch" } do
      ok, msg, code = dynafile.open("dynamodb://abc", { endpoint = server.endpoint, [opt] = 1 })
      assert.is_nil(ok)
      assert.equal("NotSupported", code)
      assert.matches("option " .. opt .. " %(", msg)
    end
    ok, msg, code = dynafile.open("dynamodb://abc", { endpoint = server.endpoint,
      max_item_size = 1000 })
    assert.is_nil(ok)
    assert.equal("NotSupported", code)
    assert.matches("max_item_size 1000 .DynamoDB keeps its own limit, 409600 bytes", msg)
    assert.has_error(function()
      dynafile.open("dynamodb://abc", { endpoint = server.endpoint, max_item_size = "big" })
    end, "dynafile.open: max_item_size must be a positive integer")
    db:close()
  end)

  it("keeps DynamoDB's 400 KB item limit, the one max_item_size it takes", function()
    local db = assert(open { pk = "PK", sk = "SK", max_item_size = 409600 })
    local ok, msg, code = db:put_item({ PK = "big", SK = "1", v = ("x"):rep(400 * 1024) })
    assert.is_nil(ok)
    assert.equal("ValidationError", code)
    assert.matches("Item size has exceeded the maximum allowed size", msg)
    assert.is_nil(db:get_item({ PK = "big", SK = "1" }))
    local fits = ("x"):rep(400 * 1024 - 20)
    assert.is_true(db:put_item({ PK = "big", SK = "1", v = fits }))
    assert.equal(#fits, #db:get_item({ PK = "big", SK = "1" }).v)
    db:close()
  end)

  it("refuses key values past DynamoDB's limits before a request, naming the attribute", function()
    local db = assert(open {
      pk = "PK", sk = "SK", gsi = { by_owner = { pk = "owner", sk = "tag" } },
    })
    local s1024, s2048 = string.rep("s", 1024), string.rep("p", 2048)
    assert(db:put_item({ PK = s2048, SK = s1024, owner = s2048, tag = s1024 }))
    assert.equal(s1024, db:get_item({ PK = s2048, SK = s1024 }).SK)
    assert.has_error(function() db:put_item({ PK = "a", SK = s1024 .. "s" }) end,
      "dynafile.put_item: key attribute SK is too long (1025 bytes, at most 1024)")
    assert.has_error(function() db:get_item({ PK = s2048 .. "p", SK = "a" }) end,
      "dynafile.get_item: key attribute PK is too long (2049 bytes, at most 2048)")
    assert.has_error(function() db:put_item({ PK = "a", SK = "b", owner = s2048 .. "p" }) end,
      "dynafile.put_item: key attribute owner is too long (2049 bytes, at most 2048)")
    assert.has_error(function()
      db:batch_write(function(w)
        w:put_item({ PK = "a", SK = "b", owner = "o", tag = s1024 .. "t" })
      end)
    end, "dynafile.batch_writer.put_item: key attribute tag is too long (1025 bytes, at most 1024)")
    assert.has_error(function() db:query(s2048 .. "p") end,
      "dynafile.query: key attribute PK is too long (2049 bytes, at most 2048)")
    local count = 0
    for _ in db:scan() do count = count + 1 end
    assert.equal(1, count)
    db:close()
  end)

  it("raises on misuse, naming the function and the argument", function()
    local db = assert(open { pk = "PK", sk = "SK" })
    assert.has_error(function() db:put_item({ PK = "a" }) end,
      "dynafile.put_item: key attribute SK is missing")
    assert.has_error(function() db:get_item({ PK = true, SK = "x" }) end,
      "dynafile.get_item: key attribute PK must be a string or a number, not boolean")
    assert.has_error(function() db:query("a", { bogus = 1 }) end,
      "dynafile.query: unknown option 'bogus'")
    assert.has_error(function() db:put_item({ PK = "a", SK = "b", f = print }) end)
    assert.has_error(function() dynafile.open("dynamodb://a b") end)
    db:close()
    assert.has_error(function() db:get_item({ PK = "a", SK = "b" }) end,
      "dynafile.get_item: database is closed")
  end)
end)
