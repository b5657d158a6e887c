-- Regular expressions in filter strings and conditions (`a =~ /re/`):
-- matched in time linear in the attribute, with a budget per match, so a
-- filter or a condition can never stall readers or writers.
local dynafile = require "dynafile"

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  return p .. "-regex"
end

describe("regular expressions", function()
  local dir, db
  local body = ("a"):rep(100000)

  before_each(function()
    dir = tmpdir()
    db = assert(dynafile.open(dir, { pk = "PK", sk = "SK" }))
    assert(db:put_item { PK = "p", SK = 1, body = body })
    assert(db:put_item { PK = "p", SK = 2, body = body .. "@x" })
    assert(db:put_item { PK = "p", SK = 3, body = ("a"):rep(3000000) })
  end)

  after_each(function()
    db:close()
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("match the classic pathological patterns over 100 KB quickly", function()
    local t0 = os.clock()
    local got = {}
    for it in db:query("p", { filter = "body =~ /.+@/", lt = 3 }) do got[#got + 1] = it.SK end
    assert.same({ 2 }, got)
    got = {}
    for it in db:query("p", { filter = "body =~ /(a+)+b/ or body =~ /(a|aa)+@/", lt = 3 }) do
      got[#got + 1] = it.SK
    end
    assert.same({ 2 }, got)
    assert.is_true(os.clock() - t0 < 5, "took " .. (os.clock() - t0) .. " s")
  end)

  it("stop a match past the budget with LimitExceeded, in queries and conditions", function()
    local pat = "/(a*b|a*c|a*d|a*e|a*f|a*g|a*h|a*i|a*j|a*k)/"
    local ok, msg, code = db:query_page("p", { filter = "body =~ " .. pat, eq = 3 })
    assert.is_nil(ok)
    assert.equal("LimitExceeded", code)
    assert.matches("regular expression needed more than its budget", msg, 1, true)
    local t0 = os.clock()
    assert.has_error(function()
      db:update_item({ PK = "p", SK = 3 }, { set = { x = 1 } }, { condition = "body =~ " .. pat })
    end)
    assert.is_true(os.clock() - t0 < 5)
    -- nothing was written, and the database is writable at once
    assert.is_nil(db:get_item({ PK = "p", SK = 3 }).x)
    assert.is_true(db:put_item { PK = "p", SK = 4 })
  end)
end)
