-- A query whose sort-key bound is longer than any stored sort key can be
-- answers the query (14.7): no stored key equals or begins with it, and
-- the range is decided by its longest prefix that fits; checked against a
-- brute-force scan over keys at and near the length limit, NUL bytes
-- included.
local dynafile = require "dynafile"

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  return p .. "-longbound"
end

describe("an over-long sort-key bound", function()
  local dir, db, keys

  setup(function()
    dir = tmpdir()
    db = assert(dynafile.open(dir, { pk = "PK", sk = "SK" }))
    keys = {}
    local base = ("m"):rep(170)
    for _, k in ipairs {
      "a", "m", base, base .. "a", base .. "m", base .. "mmmmmm", base .. "z",
      base .. "\0", base .. "\0\0\0", base .. "m\0", "n", "zz",
      ("m"):rep(177), ("m"):rep(176) .. "n", ("\0"):rep(88), ("\0"):rep(87) .. "a",
    } do
      if db:put_item { PK = "p", SK = k } then keys[#keys + 1] = k end
    end
  end)

  teardown(function()
    db:close()
    os.execute("rm -rf '" .. dir .. "'")
  end)

  local function via_query(opts)
    local out = {}
    for it in db:query("p", opts) do out[#out + 1] = it.SK end
    return out
  end

  local function brute(pred)
    local sorted = {}
    for _, k in ipairs(keys) do sorted[#sorted + 1] = k end
    table.sort(sorted)
    local out = {}
    for _, k in ipairs(sorted) do if pred(k) then out[#out + 1] = k end end
    return out
  end

  it("answers every key condition exactly, never raising", function()
    local base = ("m"):rep(170)
    local bounds = {
      ("s"):rep(1024), ("m"):rep(2000), base .. ("m"):rep(40), base .. "m" .. ("\0"):rep(30),
      base .. ("\0"):rep(30), ("\0"):rep(200), base .. "a" .. ("z"):rep(100),
    }
    assert.is_true(#keys >= 12)
    for i, b in ipairs(bounds) do
      local function same(want, got, what)
        assert.equal(table.concat(want, "|"), table.concat(got, "|"), what .. " bound " .. i)
      end
      same(brute(function(k) return k > b end), via_query { gt = b }, "gt")
      same(brute(function(k) return k >= b end), via_query { ge = b }, "ge")
      same(brute(function(k) return k < b end), via_query { lt = b }, "lt")
      same(brute(function(k) return k <= b end), via_query { le = b }, "le")
      same({}, via_query { eq = b }, "eq")
      same({}, via_query { begins_with = b }, "begins_with")
      same(brute(function(k) return k >= "a" and k <= b end),
        via_query { between = { "a", b } }, "between a")
      same(brute(function(k) return k >= b and k <= "zz" end),
        via_query { between = { b, "zz" } }, "between zz")
    end
  end)
end)
