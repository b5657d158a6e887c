-- A TTL function judges the whole item, also when an index projects only
-- some attributes: an expired item is invisible to queries and scans of a
-- "keys" or include-list index although the TTL attribute is not projected.
local dynafile = require "dynafile"

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  return p .. "-ttlproj"
end

local function sks(iter)
  local out = {}
  for it in iter do out[#out + 1] = it.SK end
  table.sort(out)
  return table.concat(out, ",")
end

local function page_sks(items)
  local out = {}
  for _, it in ipairs(items) do out[#out + 1] = it.SK end
  table.sort(out)
  return table.concat(out, ",")
end

describe("a TTL function on a database with projected indexes", function()
  local dir, db
  before_each(function()
    dir = tmpdir()
    db = assert(dynafile.open(dir, {
      pk = "PK", sk = "SK",
      ttl = function(item, now) return item.exp ~= nil and item.exp < now end,
      clock = function() return 1000 end,
      gsi = {
        by_keys = { pk = "G", sk = "GS", projection = "keys" },
        by_v = { pk = "G", projection = { "v" } },
        by_all = { pk = "G", sk = "GS" },
      },
      lsi = { by_l = { sk = "L", projection = "keys" } },
    }))
    db:put_item { PK = "p", SK = 1, G = "g", GS = 1, L = 1, v = 1, exp = 500 }
    db:put_item { PK = "p", SK = 2, G = "g", GS = 2, L = 2, v = 2 }
    db:put_item { PK = "p", SK = 3, G = "g", GS = 3, L = 3, v = 3, exp = 2000 }
  end)
  after_each(function()
    db:close()
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("hides an expired item from queries of every index, whatever it projects", function()
    for _, name in ipairs { "by_keys", "by_v", "by_all" } do
      assert.are.equal("2,3", sks(db:query("g", { index = name })), name)
    end
    assert.are.equal("2,3", sks(db:query("p", { index = "by_l" })))
  end)

  it("hides an expired item from scans and pages of projected indexes", function()
    assert.are.equal("2,3", sks(db:scan { index = "by_keys" }))
    assert.are.equal("2,3", page_sks((db:query_page("g", { index = "by_v" }))))
    assert.are.equal("2,3", page_sks((db:scan_page { index = "by_l" })))
    local items = db:query_page("g", { index = "by_keys", limit = 1 })
    assert.are.equal("2", page_sks(items))
  end)

  it("still returns only the projected attributes", function()
    for it in db:query("g", { index = "by_keys" }) do
      assert.is_nil(it.v)
    end
    for it in db:query("g", { index = "by_v" }) do
      assert.is_not_nil(it.v)
      assert.is_nil(it.exp)
    end
  end)
end)
