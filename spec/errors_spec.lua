-- Errors: misuse raises "dynafile.<function>: ..." naming what is wrong;
-- expected failures return nil, message, code.  Every failed call leaves
-- the database exactly as it was (a full scan before and after).
local dynafile = require "dynafile"
local support = dofile("spec/support/fs.lua")

describe("a failed call", function()
  local db, path, before

  before_each(function()
    path = support.tmpdir()
    db = assert(dynafile.open(path, { pk = "PK", sk = "SK", sync = "off" }))
    for i = 1, 30 do
      assert(db:put_item({ PK = "p" .. (i % 3), SK = i, v = { i, tostring(i) } }))
    end
    before = support.snapshot(db)
  end)

  after_each(function()
    if not db._c:closed() then
      assert.equal(before, support.snapshot(db), "the database changed")
      db:close()
    end
    support.cleanup()
  end)

  -- fn must raise an error whose message contains every one of `parts`
  local function raises(fn, ...)
    local ok, err = pcall(fn)
    assert.is_false(ok, "no error raised")
    err = tostring(err)
    for _, part in ipairs({ ... }) do
      assert.matches(part, err, 1, true)
    end
    return err
  end

  local function nested(levels)
    local v = {}
    local cur = v
    for _ = 2, levels do
      cur.x = {}
      cur = cur.x
    end
    return v
  end

  it("raises on a missing key attribute", function()
    raises(function() db:put_item({ PK = "p1", v = 1 }) end,
      "dynafile.put_item", "missing key attribute SK")
    raises(function() db:put_item({ SK = 1 }) end, "dynafile.put_item", "PK")
    raises(function() db:get_item({ PK = "p1" }) end, "dynafile.get_item", "SK")
    raises(function() db:delete_item({ SK = 1 }) end, "dynafile.delete_item", "PK")
    raises(function()
      db:batch_write(function(w) w:put_item({ PK = "new", SK = 1 }) w:put_item({ PK = "x" }) end)
    end, "SK")
  end)

  it("raises on a key of a wrong type: table, boolean, NaN", function()
    for _, bad in ipairs({ {}, true, false, 0 / 0 }) do
      raises(function() db:put_item({ PK = bad, SK = 1 }) end, "dynafile.put_item", "PK")
      raises(function() db:put_item({ PK = "p1", SK = bad }) end, "dynafile.put_item", "SK")
      raises(function() db:get_item({ PK = bad, SK = 1 }) end, "dynafile.get_item", "PK")
      raises(function() db:delete_item({ PK = "p1", SK = bad }) end,
        "dynafile.delete_item", "SK")
      raises(function() for _ in db:query(bad) do end end, "dynafile.query")
    end
    raises(function() db:put_item({ PK = 0 / 0, SK = 1 }) end, "NaN")
    raises(function() db:get_item({ PK = {}, SK = 1 }) end, "string or a number")
  end)

  it("raises on a key too long", function()
    raises(function() db:put_item({ PK = string.rep("k", 2049), SK = 1 }) end,
      "dynafile.put_item", "PK", "too long")
    raises(function() db:put_item({ PK = "p1", SK = string.rep("k", 1025) }) end,
      "dynafile.put_item", "SK", "too long")
    raises(function() db:delete_item({ PK = "p1", SK = string.rep("k", 1025) }) end,
      "dynafile.delete_item", "too long")
  end)

  it("raises on an item holding a function", function()
    raises(function() db:put_item({ PK = "p1", SK = 1, f = print }) end,
      "dynafile.put_item", "f", "function")
    raises(function() db:put_item({ PK = "p1", SK = 2, deep = { list = { 1, print } } }) end,
      "dynafile.put_item", "function")
  end)

  it("raises on an item holding a cycle", function()
    local t = { a = 1 }
    t.self = t
    raises(function() db:put_item({ PK = "p1", SK = 1, t = t }) end,
      "dynafile.put_item", "cyclic")
    local list = {}
    list[1] = list
    raises(function() db:put_item({ PK = "p1", SK = 1, l = list }) end, "cyclic")
  end)

  it("raises on an item nested 33 levels deep (32 are fine)", function()
    -- the item itself is the first level
    raises(function() db:put_item({ PK = "p1", SK = 1, d = nested(32) }) end,
      "dynafile.put_item", "deeper than 32")
    assert(db:put_item({ PK = "deep", SK = 1, d = nested(31) }))
    assert(db:delete_item({ PK = "deep", SK = 1 }))
  end)

  it("raises on values that cannot be stored", function()
    raises(function() db:put_item({ PK = "p1", SK = 1, c = coroutine.create(function() end) }) end,
      "dynafile.put_item", "thread")
    raises(function() db:put_item({ PK = "p1", SK = 1, u = io.stdout }) end, "userdata")
    raises(function() db:put_item({ PK = "p1", SK = 1, t = { [1.5] = 1 } }) end, "keys")
    raises(function() db:put_item({ PK = "p1", SK = 1, t = { 1, 2, x = 3 } }) end, "mixes")
    raises(function() db:put_item({ PK = "p1", SK = 1, t = { [1] = 1, [3] = 3 } }) end, "holes")
    raises(function() db:put_item("item") end, "dynafile.put_item", "table")
    raises(function() db:put_item({ "a", "b" }) end, "dynafile.put_item")
  end)

  it("raises on an unknown option", function()
    raises(function() db:put_item({ PK = "p1", SK = 1 }, { bogus = true }) end,
      "dynafile.put_item", "unknown option 'bogus'")
    raises(function() db:delete_item({ PK = "p1", SK = 1 }, { nope = 1 }) end,
      "dynafile.delete_item", "unknown option 'nope'")
    raises(function() db:query("p1", { sort = "up" }) end,
      "dynafile.query", "unknown option 'sort'")
    raises(function() db:scan({ pk = "p1" }) end, "dynafile.scan", "unknown option 'pk'")
    raises(function() db:query("p1", { limit = 0 }) end, "dynafile.query", "limit")
  end)

  it("raises on a closed handle, and the data stays", function()
    db:close()
    raises(function() db:put_item({ PK = "p1", SK = 99 }) end, "dynafile.put_item", "closed")
    raises(function() db:get_item({ PK = "p1", SK = 1 }) end, "dynafile.get_item", "closed")
    raises(function() db:delete_item({ PK = "p1", SK = 1 }) end, "dynafile.delete_item", "closed")
    raises(function() db:query("p1") end, "dynafile.query", "closed")
    raises(function() db:scan() end, "dynafile.scan", "closed")
    raises(function() db:batch_write(function() end) end, "closed")
    local again = assert(dynafile.open(path))
    assert.equal(before, support.snapshot(again))
    again:close()
  end)

  it("returns nil, message, IOError for a path that is a file", function()
    local file = path .. "/data.mdb"
    local other, msg, code = dynafile.open(file)
    assert.is_nil(other)
    assert.equal("IOError", code)
    assert.matches("not a directory", msg, 1, true)
  end)

  it("returns nil, message, IOError for a directory without permission", function()
    -- as an unprivileged user (root passes every permission check): the
    -- database directory itself made unreadable to others
    local mods = support.copy_module(support.tmpdir())
    assert(os.execute("chmod 0700 " .. support.quote(path)))
    local status, out = support.run_lua(string.format([[
      local dynafile = require "dynafile"
      local db, msg, code = dynafile.open(%q)
      print(db, code, msg)
    ]], path), { as_user = "nobody", module_dir = mods })
    assert(os.execute("chmod 0755 " .. support.quote(path)))
    assert.equal(0, status, out)
    assert.matches("^nil\tIOError\t[^\n]*[Pp]ermission denied", out)
  end)

  it("returns nil, message, code for a refused schema and changes nothing", function()
    local other, msg, code = dynafile.open(path, { pk = "id" })
    assert.is_nil(other)
    assert.equal("ValidationError", code)
    assert.is_string(msg)
  end)
end)
