-- DynamoDB expressions from Lua: dynafile.expr(text, names, values) as a
-- filter, a condition, a key condition and a projection, and
-- dynafile.expressions{...} for the expressions of one request.
local dynafile = require "dynafile"

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  return p .. "-ddbexpr"
end

local E = dynafile.expr

describe("DynamoDB expressions", function()
  local dir, db

  before_each(function()
    dir = tmpdir()
    db = assert(dynafile.open(dir, { pk = "PK", sk = "SK" }))
    for i = 1, 10 do
      assert(db:put_item {
        PK = "p", SK = i, status = i % 2 == 0 and "open" or "closed", price = i,
        tags = { "a", "b" }, m = { x = i, y = "z" },
      })
    end
    assert(db:put_item { PK = "q", SK = 1, ["odd name"] = 1 })
  end)

  after_each(function()
    db:close()
    os.execute("rm -rf '" .. dir .. "'")
  end)

  local function sks(iter, ...)
    local out = {}
    for it in iter, ... do out[#out + 1] = it.SK end
    return out
  end

  describe("as filters", function()
    it("evaluates names, values, BETWEEN and AND on the stored bytes", function()
      local f = E("#s = :v AND price BETWEEN :lo AND :hi", { ["#s"] = "status" },
        { [":v"] = "open", [":lo"] = 1, [":hi"] = 7 })
      assert.same({ 2, 4, 6 }, sks(db:query("p", { filter = f })))
      local items = db:scan_page { filter = f }
      assert.equal(3, #items)
    end)

    it("keeps DynamoDB's <>: true when the attribute is missing", function()
      assert.same({ 1 }, sks(db:query("q", { filter = E("price <> :v", nil, { [":v"] = 1 }) })))
      -- dynafile's own != stays false on a missing attribute
      assert.same({}, sks(db:query("q", { filter = "price != 1" })))
    end)

    it("supports IN, functions, size and nested paths", function()
      local f = E("SK IN (:a, :b) OR (contains(tags, :t) AND size(tags) = :two AND m.x > :x)",
        nil, { [":a"] = 1, [":b"] = 2, [":t"] = "b", [":two"] = 2, [":x"] = 8 })
      assert.same({ 1, 2, 9, 10 }, sks(db:query("p", { filter = f })))
      f = E("begins_with(#n, :p) AND attribute_type(price, :t)", { ["#n"] = "status" },
        { [":p"] = "cl", [":t"] = "N" })
      assert.same({ 1, 3, 5, 7, 9 }, sks(db:query("p", { filter = f })))
    end)

    it("reports DynamoDB's messages: raised by iterators, returned by pages", function()
      local f = E("status = :v", nil, { [":v"] = "open" })
      assert.has_error(function() db:scan { filter = f } end,
        "dynafile.scan: Invalid FilterExpression: Attribute name is a reserved keyword; "
        .. "reserved keyword: status")
      local ok, msg, code = db:query_page("p", { filter = E("a = :v AND", nil, { [":v"] = 1 }) })
      assert.is_nil(ok)
      assert.equal("ValidationError", code)
      assert.equal('dynafile.query_page: Invalid FilterExpression: Syntax error; token: "<EOF>", '
        .. 'near: "AND"', msg)
      ok, msg = db:scan_page { filter = E("a = :v", nil, { [":v"] = 1, [":w"] = 2 }) }
      assert.is_nil(ok)
      assert.equal("dynafile.scan_page: Value provided in ExpressionAttributeValues unused in "
        .. "expressions: keys: {:w}", msg)
    end)
  end)

  describe("as conditions", function()
    it("guards put_item, update_item and delete_item", function()
      local absent = E("attribute_not_exists(PK)")
      local ok, _, code = db:put_item({ PK = "p", SK = 1 }, { condition = absent })
      assert.is_nil(ok)
      assert.equal("ConditionalCheckFailed", code)
      assert.is_true(db:put_item({ PK = "new", SK = 1, n = 1 }, { condition = absent }))
      local new = db:update_item({ PK = "new", SK = 1 }, { set = { n = 2 } },
        { condition = E("n = :one", nil, { [":one"] = 1 }) })
      assert.equal(2, new.n)
      ok, _, code = db:delete_item({ PK = "new", SK = 1 },
        { condition = E("n < :x", nil, { [":x"] = 2 }) })
      assert.is_nil(ok)
      assert.equal("ConditionalCheckFailed", code)
      assert.is_true(db:delete_item({ PK = "new", SK = 1 },
        { condition = E("n <= :x", nil, { [":x"] = 2 }) }))
    end)

    it("works in transact_write_items", function()
      local ok, _, code, reasons = db:transact_write_items {
        { put = { PK = "t", SK = 1 }, condition = E("attribute_not_exists(PK)") },
        { check = { PK = "p", SK = 1 }, condition = E("price > :v", nil, { [":v"] = 5 }) },
      }
      assert.is_nil(ok)
      assert.equal("TransactionCanceled", code)
      assert.equal("None", reasons[1].code)
      assert.equal("ConditionalCheckFailed", reasons[2].code)
    end)

    it("returns a ValidationError for a malformed condition and writes nothing", function()
      local ok, msg, code = db:put_item({ PK = "x", SK = 1 }, { condition = E("a = ") })
      assert.is_nil(ok)
      assert.equal("ValidationError", code)
      assert.equal('dynafile.put_item: condition: Invalid ConditionExpression: Syntax error; '
        .. 'token: "<EOF>", near: "="', msg)
      assert.is_nil(db:get_item { PK = "x", SK = 1 })
    end)
  end)

  describe("as key conditions", function()
    it("answers queries given as the partition argument or key_condition", function()
      local k = E("PK = :p AND SK BETWEEN :lo AND :hi", nil,
        { [":p"] = "p", [":lo"] = 3, [":hi"] = 5 })
      assert.same({ 3, 4, 5 }, sks(db:query(k)))
      assert.same({ 5, 4, 3 },
        sks(db:query(nil, { key_condition = k, scan_index_forward = false })))
      assert.same({ 9, 10 },
        sks(db:query(E(":p = PK AND :k < SK", nil, { [":p"] = "p", [":k"] = 8 }))))
      local page = db:query_page(E("PK = :p", nil, { [":p"] = "q" }))
      assert.equal(1, page[1].SK)
    end)

    it("reports DynamoDB's key-condition messages", function()
      local ok, msg = db:query_page(E("SK = :s", nil, { [":s"] = 1 }))
      assert.is_nil(ok)
      assert.equal("dynafile.query_page: Invalid KeyConditionExpression: Query condition "
        .. "missed key schema element: PK", msg)
      ok, msg = db:query_page(E("PK = :p OR SK = :s", nil, { [":p"] = "p", [":s"] = 1 }))
      assert.is_nil(ok)
      assert.equal("dynafile.query_page: Invalid KeyConditionExpression: Invalid operator used in "
        .. "KeyConditionExpression: OR", msg)
    end)

    it("refuses a key condition given twice", function()
      local k = E("PK = :p", nil, { [":p"] = "p" })
      assert.has_error(function() db:query(k, { key_condition = k }) end,
        "dynafile.query: a key condition given twice (as pk and as key_condition)")
      assert.has_error(function() db:query(k, { eq = 1 }) end,
        "dynafile.query: only one key condition allowed (eq and key_condition)")
    end)
  end)

  describe("as projections", function()
    it("returns only the projected paths from get_item, query and scan", function()
      local it = db:get_item({ PK = "p", SK = 3 }, { projection = { "price", "m.x" } })
      assert.same({ price = 3, m = { x = 3 } }, it)
      local items = db:query_page("p",
        { limit = 2, projection = E("SK, #m.y", { ["#m"] = "m" }) })
      assert.same({ { SK = 1, m = { y = "z" } }, { SK = 2, m = { y = "z" } } }, items)
      local seen = 0
      for item in db:scan { projection = { "tags[1]" } } do
        if item.tags then
          assert.same({ tags = { "b" } }, item)
          seen = seen + 1
        end
      end
      assert.equal(10, seen)
    end)

    it("projects after a Lua filter, which sees the whole item", function()
      local out = {}
      for item in db:query("p", { filter = function(i) return i.price > 8 end,
        projection = { "price" } }) do
        out[#out + 1] = item
      end
      assert.same({ { price = 9 }, { price = 10 } }, out)
    end)

    it("keeps paging exact when items are projected", function()
      local all, after = {}, nil
      repeat
        local page
        page, after = db:query_page("p",
          { limit = 3, start_after = after, projection = { "price" } })
        for _, item in ipairs(page) do all[#all + 1] = item.price end
      until after == nil
      assert.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, all)
    end)

    it("returns only the projected paths from batch_get_item, false for missing items", function()
      local keys = { { PK = "p", SK = 2 }, { PK = "p", SK = 99 }, { PK = "p", SK = 2 } }
      local got = db:batch_get_item(keys, { projection = E("m.#y, tags[0]", { ["#y"] = "y" }) })
      local want = { m = { y = "z" }, tags = { "a" } }
      assert.same({ want, false, want }, got)
      assert.are_not.equal(got[1], got[3]) -- each entry a table of its own
      assert.same({ { price = 2 } }, db:batch_get_item({ keys[1] }, { projection = { "price" } }))
      local ok, msg, code = db:batch_get_item(keys, { projection = E("a, a") })
      assert.is_nil(ok)
      assert.equal("ValidationError", code)
      assert.matches("^dynafile.batch_get_item: Invalid ProjectionExpression", msg)
      assert.has_error(function() db:batch_get_item(keys, { projection = 5 }) end,
        "dynafile.batch_get_item: projection must be a list of paths or a dynafile.expr, "
        .. "got number")
      assert.has_error(function() db:batch_get_item(keys, { bogus = 1 }) end,
        "dynafile.batch_get_item: unknown option 'bogus'")
    end)

    it("hides expired items and leaves the TTL attribute out unless it is projected", function()
      local tdir = tmpdir() .. "-ttl"
      -- times near the present: a server deleting expired items by its own
      -- clock keeps them
      local t0 = os.time()
      local now = t0 + 1000
      local tdb = assert(dynafile.open(tdir,
        { pk = "PK", sk = "SK", ttl = "exp", clock = function() return now end }))
      assert(tdb:put_item { PK = "t", SK = 1, exp = t0 + 1500, v = 1 })
      assert(tdb:put_item { PK = "t", SK = 2, exp = t0 + 5000, v = 2 })
      assert.same({ v = 1 }, tdb:get_item({ PK = "t", SK = 1 }, { projection = { "v" } }))
      now = t0 + 2000
      assert.is_nil(tdb:get_item({ PK = "t", SK = 1 }, { projection = { "v" } }))
      assert.same({ { v = 2 } }, tdb:query_page("t", { projection = { "v" } }))
      assert.same({ false, { v = 2, exp = t0 + 5000 } }, tdb:batch_get_item(
        { { PK = "t", SK = 1 }, { PK = "t", SK = 2 } }, { projection = { "v", "exp" } }))
      local n = 0
      for it in tdb:scan { projection = { "v" } } do
        assert.same({ v = 2 }, it)
        n = n + 1
      end
      assert.equal(1, n)
      tdb:close()
      os.execute("rm -rf '" .. tdir .. "'")
    end)

    it("pages exactly through a filtered, projected query with a limit", function()
      local all, after = {}, nil
      repeat
        local page
        page, after = db:query_page("p", { limit = 2, start_after = after,
          filter = E("#s = :o", { ["#s"] = "status" }, { [":o"] = "open" }),
          projection = { "m.x" } })
        for _, item in ipairs(page) do all[#all + 1] = item.m.x end
      until after == nil
      assert.same({ 2, 4, 6, 8, 10 }, all)
    end)

    it("accepts any attribute name in the list form", function()
      assert.same({ ["odd name"] = 1 },
        db:get_item({ PK = "q", SK = 1 }, { projection = { "odd name" } }))
      local ok, msg = db:get_item({ PK = "q", SK = 1 }, { projection = E("a, a.b") })
      assert.is_nil(ok)
      assert.equal("dynafile.get_item: Invalid ProjectionExpression: Two document paths overlap "
        .. "with each other; must remove or rewrite one of these paths; path one: [a], path two: "
        .. "[a, b]", msg)
    end)
  end)

  describe("dynafile.expressions", function()
    it("compiles a request's expressions against shared names and values", function()
      local x = assert(dynafile.expressions {
        condition = "#a = :v", filter = "#b > :w",
        names = { ["#a"] = "price", ["#b"] = "price" }, values = { [":v"] = 3, [":w"] = 8 },
      })
      assert.same({ 9, 10 }, sks(db:query("p", { filter = x.filter })))
      assert.is_true(db:put_item({ PK = "p", SK = 3, price = 33 }, { condition = x.condition }))
    end)

    it("reports names and values no expression uses", function()
      local ok, msg, code = dynafile.expressions {
        condition = "#a = :v", names = { ["#a"] = "a", ["#b"] = "b" }, values = { [":v"] = 1 },
      }
      assert.is_nil(ok)
      assert.equal("ValidationError", code)
      assert.equal("Value provided in ExpressionAttributeNames unused in expressions: "
        .. "keys: {#b}", msg)
      ok, msg = dynafile.expressions { filter = "a = :v", values = { v = 1 } }
      assert.is_nil(ok)
      assert.equal('ExpressionAttributeValues contains invalid key: Syntax error; token: "v", '
        .. 'near: "v"', msg)
    end)

    it("compiles one request's expressions one by one with dynafile.ddb_args", function()
      local args = assert(dynafile.ddb_args({ ["#n"] = "price" }, { [":v"] = 5, [":one"] = 1 }))
      local e = assert(args:condition("filter", "#n > :v"))
      assert.is_true(e:eval { price = 6 })
      assert.is_false(e:eval { price = 5 })
      assert.is_false(e:eval(nil))
      local u = assert(args:update("SET #n = #n + :one, m.x = :one REMOVE z ADD c :one"))
      assert.same({ "price", "m", "z", "c" }, u:paths())
      assert.is_true(args:check_unused())
      assert.same({ 9, 10 }, sks(db:query("p", { filter = e, gt = 8 })))
      local new = db:update_item({ PK = "p", SK = 9 }, u)
      assert.equal(10, new.price)
      local p = assert(args:projection("#n"))
      assert.same({ price = 10 }, p:apply(new))
      local ok, msg, code = args:condition("condition", "#n = :nope")
      assert.is_nil(ok)
      assert.equal("ValidationError", code)
      assert.equal("Invalid ConditionExpression: An expression attribute value used in expression "
        .. "is not defined; attribute value: :nope", msg)
    end)

    it("raises on misuse", function()
      assert.has_error(function() dynafile.expressions { where = "a" } end,
        "dynafile.expressions: unknown field 'where'")
      assert.has_error(function() dynafile.expr(1) end,
        "dynafile.expr: text must be a string, got number")
    end)
  end)
end)

describe("updates", function()
  local dir, db
  local K = { PK = "u", SK = 1 }

  before_each(function()
    dir = tmpdir()
    db = assert(dynafile.open(dir, { pk = "PK", sk = "SK" }))
  end)

  after_each(function()
    db:close()
    os.execute("rm -rf '" .. dir .. "'")
  end)

  local function get() return db:get_item(K) end

  describe("in DynamoDB's syntax", function()
    it("sets with arithmetic, if_not_exists and list_append, and removes", function()
      db:put_item { PK = "u", SK = 1, n = 5, b = "gone", l = { 1 }, m = { x = 1 } }
      local new = db:update_item(K, E("SET n = n + :one, c = if_not_exists(c, :zero), "
        .. "l = list_append(l, :more), m.y = n - :one, d = if_not_exists(n, :zero) REMOVE b",
        nil, { [":one"] = 1, [":zero"] = 0, [":more"] = { 2, 3 } }))
      assert.same({ PK = "u", SK = 1, n = 6, c = 0, l = { 1, 2, 3 }, m = { x = 1, y = 4 }, d = 5 },
        new)
      assert.same(new, get())
    end)

    it("reads every value from the item as it was: SET a = b, b = a swaps", function()
      db:put_item { PK = "u", SK = 1, a = "A", b = "B" }
      assert.same({ PK = "u", SK = 1, a = "B", b = "A" }, db:update_item(K, E("SET a = b, b = a")))
    end)

    it("adds to numbers, removes list elements and creates the item", function()
      db:put_item { PK = "u", SK = 1, n = 1, l = { "a", "b", "c", "d" } }
      local new = db:update_item(K, E("ADD n :two, fresh :two REMOVE l[0], l[2]", nil,
        { [":two"] = 2 }))
      assert.same({ PK = "u", SK = 1, n = 3, fresh = 2, l = { "b", "d" } }, new)
      new = db:update_item({ PK = "v", SK = 2 }, E("SET #a = :a", { ["#a"] = "a" }, { [":a"] = 1 }))
      assert.same({ PK = "v", SK = 2, a = 1 }, new)
    end)

    it("returns DynamoDB's messages and writes nothing", function()
      db:put_item { PK = "u", SK = 1, n = 1, s = "x" }
      local before = get()
      local cases = {
        { E("SET a = :v SET b = :v", nil, { [":v"] = 1 }),
          'Invalid UpdateExpression: The "SET" section can only be used once in an update '
          .. "expression;" },
        { E("SET a.b = :v, a = :v", nil, { [":v"] = 1 }),
          "Invalid UpdateExpression: Two document paths overlap with each other; must remove "
          .. "or rewrite one of these paths; path one: [a, b], path two: [a]" },
        { E("SET q = z + :v", nil, { [":v"] = 1 }),
          "The provided expression refers to an attribute that does not exist in the item" },
        { E("SET nope.such = :v", nil, { [":v"] = 1 }),
          "The document path provided in the update expression is invalid for update" },
        { E("SET n = s + :v", nil, { [":v"] = 1 }),
          "An operand in the update expression has an incorrect data type" },
        { E("ADD s :v", nil, { [":v"] = 1 }),
          "An operand in the update expression has an incorrect data type" },
        { E("ADD n :v", nil, { [":v"] = "x" }),
          "Invalid UpdateExpression: Incorrect operand type for operator or function; "
          .. "operator: ADD, operand type: STRING" },
        { E("SET SK = :v", nil, { [":v"] = 2 }),
          "One or more parameter values were invalid: Cannot update attribute SK. This "
          .. "attribute is part of the key" },
        { E("SET a = :v", nil, { [":v"] = 1, [":w"] = 2 }),
          "Value provided in ExpressionAttributeValues unused in expressions: keys: {:w}" },
        { E("SET a = :v + ", nil, { [":v"] = 1 }),
          'Invalid UpdateExpression: Syntax error; token: "<EOF>", near: "+"' },
      }
      for _, c in ipairs(cases) do
        local ok, msg, code = db:update_item(K, c[1])
        assert.is_nil(ok)
        assert.equal("ValidationError", code)
        assert.equal("dynafile.update_item: " .. c[2], msg)
        assert.same(before, get())
      end
    end)

    it("works in transactions and transact_write_items", function()
      db:put_item { PK = "u", SK = 1, n = 1 }
      assert.is_true(db:transact_write_items {
        { update = K, changes = E("SET n = n + :one", nil, { [":one"] = 1 }) },
      })
      db:transaction(function(tx)
        tx:update_item(K, E("SET n = n * :one", nil, { [":one"] = 1 }))
      end)
      assert.equal(2, get().n)
    end)
  end)

  describe("in either syntax", function()
    it("keeps the exact bytes of every attribute it does not name", function()
      db:put_item { PK = "u", SK = 1, f = 1.0, big = 9007199254740993, nested = { g = 2.0 } }
      local function raw() return db._c:encode(get()) end
      local before = raw()
      assert.is_table(db:update_item(K, { set = { extra = 1 } }))
      assert.is_table(db:update_item(K, E("REMOVE extra")))
      assert.equal(before, raw())
      assert.equal(9007199254740993, get().big)
    end)

    it("reads backtick-quoted names in table paths as in filter strings", function()
      db:put_item { PK = "u", SK = 1 }
      db:update_item(K, { set = { ["`a.b`"] = 1, ["m.`x y`"] = 2 } })
      assert.same({ PK = "u", SK = 1, ["a.b"] = 1, m = { ["x y"] = 2 } }, get())
      assert.equal(1, #db:query_page("u", { filter = "`a.b` == 1 and m.`x y` == 2" }))
    end)

    it("adds a list to a new attribute as a set: one copy of each value", function()
      db:put_item { PK = "u", SK = 1 }
      db:update_item(K, { add = { l = { "x", "x", 1, 1.0 } } })
      assert.same({ "x", 1 }, get().l)
    end)
  end)
end)
