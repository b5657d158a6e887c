-- Opening databases: creation, the stored schema, meta.json, options,
-- bad paths, permissions, one shared environment per directory,
-- persistence across processes, map growth and the sync modes.
local dynafile = require "dynafile"
local support = dofile("spec/support/fs.lua")

describe("dynafile.open", function()
  after_each(function()
    support.cleanup()
  end)

  it("creates the directory with its parents, the environment and meta.json", function()
    local path = support.tmpdir() .. "/a/b/c"
    local db = assert(dynafile.open(path, { pk = "id", sk = "ts" }))
    assert.is_true(support.exists(path .. "/data.mdb"))
    local meta = support.slurp(path .. "/meta.json")
    assert.matches('"pk": "id"', meta, 1, true)
    assert.matches('"sk": "ts"', meta, 1, true)
    assert.same({ pk = "id", sk = "ts", indexes = {} }, db:schema())
    db:close()
  end)

  it("uses PK and SK when a new database is opened without a schema", function()
    local db = assert(dynafile.open(support.tmpdir()))
    assert.equal("PK", db:schema().pk)
    assert.equal("SK", db:schema().sk)
    db:close()
  end)

  it("reopens without options using the stored schema", function()
    local path = support.tmpdir()
    local db = assert(dynafile.open(path, { pk = "id", sk = "ts" }))
    assert(db:put_item({ id = "a", ts = 1, v = "x" }))
    db:close()
    db = assert(dynafile.open(path))
    assert.equal("id", db:schema().pk)
    assert.equal("x", db:get_item({ id = "a", ts = 1 }).v)
    assert(db:put_item({ id = "a", ts = 2 }))
    db:close()
    -- the same schema given again is fine too
    db = assert(dynafile.open(path, { pk = "id", sk = "ts" }))
    db:close()
  end)

  it("refuses a schema that differs from the stored one", function()
    local path = support.tmpdir()
    assert(dynafile.open(path, { pk = "id", sk = "ts" })):close()
    for _, opts in ipairs({ { pk = "PK", sk = "ts" }, { pk = "id", sk = "other" },
                            { pk = "id", sk = false } }) do
      local db, msg, code = dynafile.open(path, opts)
      assert.is_nil(db)
      assert.equal("ValidationError", code)
      assert.is_string(msg)
      assert.is_true(#msg > 0)
    end
    -- and nothing was changed by the attempts
    assert.same({ pk = "id", sk = "ts", indexes = {} }, assert(dynafile.open(path)):schema())
  end)

  it("makes a partition-key-only table with sk = false", function()
    local path = support.tmpdir()
    local db = assert(dynafile.open(path, { pk = "id", sk = false }))
    assert.is_nil(db:schema().sk)
    assert(db:put_item({ id = "one", v = 1 }))
    assert(db:put_item({ id = "one", v = 2 }))
    assert.equal(2, db:get_item({ id = "one" }).v)
    local n = 0
    for item in db:query("one") do n = n + 1 assert.equal(2, item.v) end
    assert.equal(1, n)
    db:close()
    assert.matches('"sk": null', support.slurp(path .. "/meta.json"), 1, true)
    db = assert(dynafile.open(path))
    assert.is_nil(db:schema().sk)
    assert.equal(2, db:get_item({ id = "one" }).v)
    db:close()
  end)

  it("raises on an unknown option or a bad option value", function()
    local path = support.tmpdir()
    assert.has_error(function() dynafile.open(path, { pk = "PK", bogus = 1 }) end,
      "dynafile.open: unknown option 'bogus'")
    assert.has_error(function() dynafile.open(path, { sync = "sometimes" }) end)
    assert.has_error(function() dynafile.open(path, { map_size = -1 }) end)
    assert.has_error(function() dynafile.open(path, "PK") end)
    assert.has_error(function() dynafile.open(nil) end)
    assert.has_error(function() dynafile.open("") end)
    assert.is_false(support.exists(path .. "/data.mdb"))
  end)

  it("returns an IOError for a path that is a file", function()
    local file = support.tmpdir() .. "/file"
    local f = assert(io.open(file, "w"))
    f:write("not a database")
    f:close()
    local db, msg, code = dynafile.open(file)
    assert.is_nil(db)
    assert.equal("IOError", code)
    assert.matches("not a directory", msg, 1, true)
    assert.equal("not a database", support.slurp(file))
  end)

  it("returns an IOError for a directory it may not use", function()
    -- Run as an unprivileged user: root would pass any permission check.
    local base = support.tmpdir()
    local mods = support.copy_module(base .. "/mods")
    local locked = base .. "/locked"
    local open_dir = base .. "/open"
    assert(os.execute("mkdir -m 0700 " .. support.quote(locked) .. " && mkdir -m 0777 " ..
      support.quote(open_dir)))
    local existing = base .. "/existing"
    assert(dynafile.open(existing)):close()
    assert(os.execute("chmod 0555 " .. support.quote(existing)))
    local code = [[
      local dynafile = require "dynafile"
      local function try(path)
        local db, msg, code = dynafile.open(path)
        if db then db:close() return "opened" end
        return code .. ": " .. msg
      end
      print("locked", try(]] .. string.format("%q", locked .. "/db") .. [[))
      print("readonly", try(]] .. string.format("%q", existing) .. [[))
      print("allowed", try(]] .. string.format("%q", open_dir .. "/db") .. [[))
    ]]
    local status, out = support.run_lua(code, { as_user = "nobody", module_dir = mods })
    assert.equal(0, status, out)
    assert.matches("locked%s+IOError: [^\n]*[Pp]ermission denied", out)
    assert.matches("readonly%s+IOError: [^\n]*[Pp]ermission denied", out)
    assert.matches("allowed%s+opened", out) -- the same user can open where allowed
    assert.is_false(support.exists(locked .. "/db"))
  end)

  it("shares one environment between two opens of a directory", function()
    local path = support.tmpdir()
    local a = assert(dynafile.open(path, { pk = "PK", sk = "SK" }))
    local b = assert(dynafile.open(path .. "/."))
    assert.equal(a._c:id(), b._c:id())
    assert(a:put_item({ PK = "x", SK = "y", v = 1 }))
    assert.equal(1, b:get_item({ PK = "x", SK = "y" }).v)
    -- a listener registered on one handle hears writes through the other
    local heard = 0
    a:add_stream_listener(function() heard = heard + 1 end)
    assert(b:put_item({ PK = "x", SK = "z" }))
    assert.equal(1, heard)
    a:close()
    assert(b:put_item({ PK = "x", SK = "w" }))
    assert.equal(3, #b:query_page("x"))
    b:close()
    local other = assert(dynafile.open(support.tmpdir()))
    assert.are_not.equal(a._id, other._c:id())
    other:close()
  end)

  it("keeps every acknowledged write for a new process, closed or not", function()
    local path = support.tmpdir()
    local db = assert(dynafile.open(path, { pk = "PK", sk = "SK" }))
    for i = 1, 50 do assert(db:put_item({ PK = "p", SK = i, v = i * 2 })) end
    db:close()
    -- a child writes more and exits without closing its handle
    local status, out = support.run_lua(string.format([[
      local dynafile = require "dynafile"
      local db = assert(dynafile.open(%q))
      for i = 51, 80 do assert(db:put_item({ PK = "p", SK = i, v = i * 2 })) end
      assert(db:batch_write(function(w) w:put_item({ PK = "q", SK = 1 }) end))
      os.exit(0, false) -- no close, no garbage collection
    ]], path))
    assert.equal(0, status, out)
    -- another child reads everything back
    status, out = support.run_lua(string.format([[
      local dynafile = require "dynafile"
      local db = assert(dynafile.open(%q))
      local n, sum = 0, 0
      for item in db:query("p") do n, sum = n + 1, sum + item.v end
      print(n, sum, db:get_item({ PK = "q", SK = 1 }) ~= nil)
    ]], path))
    assert.equal(0, status, out)
    assert.equal("80\t6480\ttrue\n", out)
  end)

  it("grows the map by itself far past map_size", function()
    local path = support.tmpdir()
    local db = assert(dynafile.open(path, { pk = "PK", sk = "SK", map_size = 1024 * 1024,
      sync = "off" }))
    local blob = string.rep("x", 20000)
    for i = 1, 300 do assert(db:put_item({ PK = "big", SK = i, blob = blob })) end
    assert(db:batch_write(function(w)
      for i = 301, 1000 do w:put_item({ PK = "big", SK = i, blob = blob }) end
    end))
    local st = db:stat()
    assert.equal(1000, st.items)
    assert.is_true(st.map_size > 20 * 1024 * 1024)
    local n = 0
    for item in db:query("big") do
      n = n + 1
      assert.equal(20000, #item.blob)
    end
    assert.equal(1000, n)
    db:close()
  end)

  for _, mode in ipairs({ "full", "normal", "off" }) do
    it("persists writes with sync = \"" .. mode .. "\"", function()
      local path = support.tmpdir()
      local db = assert(dynafile.open(path, { pk = "PK", sk = "SK", sync = mode }))
      for i = 1, 20 do assert(db:put_item({ PK = "p", SK = i })) end
      db:close()
      local status, out = support.run_lua(string.format([[
        local dynafile = require "dynafile"
        local db = assert(dynafile.open(%q, { sync = %q }))
        local n = 0
        for _ in db:query("p") do n = n + 1 end
        print(n)
      ]], path, mode))
      assert.equal(0, status, out)
      assert.equal("20\n", out)
    end)
  end
end)
