-- Misuse errors carry the position of the caller's line (or none), never a
-- line inside the library: "dynafile.query: ..." raised for a bad option
-- points at the user's code however deep in lua/dynafile/ it was found.
local dynafile = require "dynafile"

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  return p .. "-errpos"
end

-- The message of the error f raises, called from this file.
local function raised(f)
  local ok, err = pcall(f)
  assert.is_false(ok)
  return tostring(err)
end

local function check(err, fn)
  assert.is_nil(err:find("dynafile[/\\][%w_]+%.lua:%d+:"), err)
  assert.is_truthy(err:find("dynafile." .. fn .. ": ", 1, true), err)
  local prefix = err:match("^(.-)dynafile%.")
  assert.is_truthy(prefix == "" or prefix:find("error_position_spec.lua:%d+: $"), err)
end

describe("the position of a misuse error", function()
  local dir, db
  before_each(function()
    dir = tmpdir()
    db = assert(dynafile.open(dir, { pk = "PK", sk = "SK", gsi = { by_g = { pk = "G" } } }))
  end)
  after_each(function()
    db:close()
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("is the caller's line for bad query and scan options", function()
    check(raised(function() db:query("a", { bogus = 1 }) end), "query")
    check(raised(function() db:query("a", { limit = 0 }) end), "query")
    check(raised(function() db:query("a", { eq = 1, lt = 2 }) end), "query")
    check(raised(function() db:query(nil) end), "query")
    check(raised(function() db:scan { segment = 1 } end), "scan")
    check(raised(function() db:query_page("a", { index = 5 }) end), "query_page")
    check(raised(function() db:scan_page { start_after = 1 } end), "scan_page")
    check(raised(function() db:query("a", { filter = "v >" }) end), "query")
  end)

  it("is the caller's line for bad open options and index definitions", function()
    check(raised(function() dynafile.open(dir, { bogus = 1 }) end), "open")
    check(raised(function()
      dynafile.open(dir .. "2", { pk = "PK", gsi = { by_g = { pk = "G", projection = "bad" } } })
    end), "open")
  end)

  it("is the caller's line for bad write options and a closed handle", function()
    check(raised(function() db:put_item({ PK = "a", SK = 1 }, { bogus = 1 }) end), "put_item")
    check(raised(function() db:delete_item({ PK = "a", SK = 1 }, 5) end), "delete_item")
    check(raised(function() db:purge_expired("x") end), "purge_expired")
    check(raised(function()
      db:transaction(function(tx) tx:put_item({ PK = "a", SK = 1 }, { bogus = 1 }) end)
    end), "transaction.put_item")
    db:close()
    check(raised(function() db:query("a") end), "query")
    check(raised(function() db:scan_page() end), "scan_page")
  end)
end)
