-- Every misuse message names the function the user called, wherever the
-- problem is found: in Lua, in the binding or in the core, before the
-- write transaction or inside it, in a transaction function or in an
-- action of transact_write_items.
local dynafile = require "dynafile"

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  return p .. "-fnames"
end

-- The message f raises; f must raise.
local function raised(f)
  local ok, err = pcall(f)
  assert.is_false(ok, "no error was raised")
  return tostring(err)
end

local LONG_SK = string.rep("s", 1025) -- past the sort-key limit
local LONG_G = string.rep("g", 3000) -- past the GSI partition-key limit

describe("a misuse message", function()
  local dir, db

  before_each(function()
    dir = tmpdir()
    db = assert(dynafile.open(dir, { pk = "PK", sk = "SK", ttl = "exp",
      gsi = { by_g = { pk = "G" } } }))
    db:put_item { PK = "a", SK = 1, v = 1 }
  end)

  after_each(function()
    db:close()
    os.execute("rm -rf '" .. dir .. "'")
  end)

  -- name: the function the user called; f: a call with a bad value the
  -- library judges; what: the problem the message states
  local cases = {
    { "put_item", function() db:put_item { PK = "a", SK = true } end,
      "key attribute SK must be a string or a number" },
    { "put_item", function()
      db:put_item({ PK = "a", SK = 1, f = print }, { return_old = true })
    end, "item: f: cannot store a function" },
    { "put_item", function()
      db:put_item({ PK = "a", SK = 2, G = LONG_G }, { condition = "not exists(PK)" })
    end, "G is too long for index by_g" },
    { "put_item", function() db:put_item { PK = "a", SK = 2, G = LONG_G } end,
      "G is too long for index by_g" },
    { "delete_item", function() db:delete_item { PK = "a" } end,
      "missing key attribute SK" },
    { "delete_item", function()
      db:delete_item({ PK = "a", SK = LONG_SK }, { return_old = true })
    end, "key attribute SK is too long" },
    { "update_item", function() db:update_item({ PK = "a", SK = 0 / 0 }, { set = { v = 1 } }) end,
      "key attribute SK must not be NaN" },
    { "update_item", function() db:update_item({ PK = "a", SK = 1 }, { set = { G = LONG_G } }) end,
      "G is too long for index by_g" },
    { "update_item", function()
      db:update_item({ PK = "a", SK = 1 }, function(old) old.f = print return old end)
    end, "item: f: cannot store a function" },
    { "get_item", function() db:get_item { PK = {}, SK = 1 } end,
      "key attribute PK must be a string or a number" },
    { "batch_get_item", function() db:batch_get_item { { PK = "a" } } end,
      "missing key attribute SK" },
    { "query", function() db:query({}) end, "partition key must be a string or a number" },
    { "query", function() db:query("a", { index = "nope" }) end, "no index named nope" },
    { "query", function() db:query("a", { between = { 1, true } }) end,
      "between[2] must be a string or a number" },
    { "query_page", function() db:query_page("a", { begins_with = 5 }) end,
      "begins_with must be a string" },
    { "scan", function() for _ in db:scan { start_after = { PK = "a" } } do end end,
      "missing key attribute SK" },
    { "scan_page", function() db:scan_page { index = "nope" } end, "no index named nope" },
    { "batch_writer.put_item", function() db:batch_writer():put_item { PK = "a" } end,
      "missing key attribute SK" },
    { "batch_writer.delete_item", function() db:batch_writer():delete_item { SK = 1 } end,
      "missing key attribute PK" },
    { "batch_writer.flush", function()
      local w = db:batch_writer()
      w:put_item { PK = "a", SK = 3, G = LONG_G }
      local ok, err = pcall(w.flush, w)
      w:discard()
      if not ok then error(err, 0) end
    end, "G is too long for index by_g" },
    { "batch_write", function() db:batch_write(5) end, "argument must be a function" },
    { "transaction.put_item", function()
      db:transaction(function(tx) tx:put_item { PK = "a", SK = 3, G = LONG_G } end)
    end, "G is too long for index by_g" },
    { "transaction.get_item", function()
      db:transaction(function(tx) tx:get_item { PK = "a", SK = false } end)
    end, "key attribute SK must be a string or a number" },
    { "transaction.delete_item", function()
      db:transaction(function(tx) tx:delete_item { PK = "a" } end)
    end, "missing key attribute SK" },
    { "transaction.update_item", function()
      db:transaction(function(tx)
        tx:update_item({ PK = "a", SK = 1 }, { set = { G = LONG_G } })
      end)
    end, "G is too long for index by_g" },
    { "transaction.condition_check", function()
      db:transaction(function(tx) tx:condition_check({ PK = "a" }, "exists(v)") end)
    end, "missing key attribute SK" },
    { "transact_write_items: actions[2]", function()
      db:transact_write_items { { check = { PK = "a", SK = 1 }, condition = "exists(v)" },
        { put = { PK = "a", SK = 3, G = LONG_G } } }
    end, "G is too long for index by_g" },
    { "transact_write_items: actions[1]", function()
      db:transact_write_items {
        { update = { PK = "a", SK = 1 }, changes = { set = { G = LONG_G } } },
      }
    end, "G is too long for index by_g" },
    { "transact_write_items: actions[2]", function()
      db:transact_write_items { { delete = { PK = "a", SK = 1 } }, { put = { PK = "b" } } }
    end, "missing key attribute SK" },
    { "purge_expired", function() db:purge_expired(0) end, "limit must be a positive integer" },
    { "drop_index", function() db:drop_index("nope") end, "no index named nope" },
  }

  for _, c in ipairs(cases) do
    local name, f, what = c[1], c[2], c[3]
    it("names " .. name .. " for '" .. what .. "'", function()
      local err = raised(f)
      assert.matches("dynafile." .. name .. ": ", err, 1, true)
      assert.matches(what, err, 1, true)
    end)
  end

  it("names the function on a closed handle and on a read-only one", function()
    local ro = assert(dynafile.open(dir, { readonly = true }))
    for _, name in ipairs { "put_item", "delete_item", "update_item", "batch_write",
                            "transaction", "purge_expired" } do
      local err = raised(function()
        if name == "put_item" then ro:put_item { PK = "a", SK = 5 }
        elseif name == "delete_item" then ro:delete_item { PK = "a", SK = 1 }
        elseif name == "update_item" then ro:update_item({ PK = "a", SK = 1 }, { set = { v = 2 } })
        elseif name == "batch_write" then
          ro:batch_write(function(w) w:put_item { PK = "a", SK = 6 } end)
        elseif name == "transaction" then ro:transaction(function() end)
        else ro:purge_expired() end
      end)
      local where = name == "batch_write" and "batch_writer.flush" or name
      assert.matches("dynafile." .. where .. ": the database is opened read-only", err, 1, true)
    end
    ro:close()
    for _, name in ipairs { "get_item", "put_item", "query", "scan_page", "poll_stream", "stat" } do
      local err = raised(function() return db[name](ro, { PK = "a", SK = 1 }) end)
      assert.matches("dynafile." .. name .. ": database is closed", err, 1, true)
    end
  end)
end)
