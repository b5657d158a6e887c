-- Sort keys up to DynamoDB's 1,024 bytes.  Values whose encoding passes
-- 160 bytes are kept in keys as a prefix and a hash, and put back in value
-- order from the items: every read (queries with each key condition, both
-- directions, pages of every size, starts_with, scans, GSIs and LSIs)
-- must return exactly what a plain sorted list says, also when many long
-- values share their first 160 bytes.
local dynafile = require "dynafile"
local support = dofile("spec/support/fs.lua")

-- bytewise string order (Lua's < may follow the locale)
local function bytes_less(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = a:byte(i), b:byte(i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

-- A reproducible generator, the same on every Lua version.
local function rng(seed)
  local s = seed
  return function(n)
    s = (s * 1103515245 + 12345) % 2147483648
    return s % n
  end
end

-- Sort values: short ones, long ones sharing a 200-byte stem (one group),
-- long ones sharing a 158-byte stem that the prefix cuts (several groups),
-- NUL bytes at the cut, and the extremes of 157, 158 and 1,024 bytes.
local function values(r, n)
  local stem = string.rep("s", 200)
  local stem2 = string.rep("t", 158)
  local out, seen = {}, {}
  local function add(v)
    if not seen[v] then
      seen[v] = true
      out[#out + 1] = v
    end
  end
  add(string.rep("a", 157))
  add(string.rep("a", 158))
  add(string.rep("a", 1024))
  add(string.rep("\0", 1024))
  add(stem)
  add(stem .. "\0")
  add(string.rep("u", 158) .. "\0\0\0")
  add(string.rep("u", 158) .. "\0\0")
  add(string.rep("u", 159) .. "\0")
  while #out < n do
    local k = r(5)
    local tail = {}
    for i = 1, 1 + r(30) do tail[i] = string.char(97 + r(3)) end
    tail = table.concat(tail)
    if k == 0 then add(tail)
    elseif k == 1 then add(stem .. tail)
    elseif k == 2 then add(stem2 .. tail .. string.rep("z", r(800)))
    elseif k == 3 then add(stem .. string.rep(tail, 1 + r(20)):sub(1, 800))
    else add(string.rep("s", 150 + r(20)) .. tail) end
  end
  return out
end

local function sorted(list)
  local t = {}
  for i, v in ipairs(list) do t[i] = v end
  table.sort(t, bytes_less)
  return t
end

describe("long sort keys", function()
  local db, dir, vals, model

  before_each(function()
    dir = support.tmpdir()
    db = assert(dynafile.open(dir, {
      pk = "PK", sk = "SK", sync = "off",
      gsi = { by_g = { pk = "g", sk = "SK", projection = "keys" },
              by_l = { pk = "grp", sk = "lk" } },
      lsi = { by_lk = { sk = "lk" } },
    }))
    local r = rng(42)
    vals = values(r, 160)
    -- put in a scrambled order; every item also in a GSI (same sort value)
    -- and with a long LSI / GSI sort value of its own
    local order = {}
    for i = 1, #vals do order[i] = i end
    for i = #order, 2, -1 do
      local j = 1 + r(i)
      order[i], order[j] = order[j], order[i]
    end
    db:batch_write(function(w)
      for _, i in ipairs(order) do
        w:put_item { PK = "p", SK = vals[i], g = "G", grp = "L",
          lk = string.rep("k", 170) .. string.format("%05d", i) }
      end
    end)
    model = sorted(vals)
  end)

  after_each(function()
    db:close()
    support.cleanup()
  end)

  local function sks(pk, opts, field)
    local got = {}
    for it in db:query(pk, opts) do got[#got + 1] = it[field or "SK"] end
    return got
  end

  local function paged(pk, opts, limit, field)
    local got, nk = {}, nil
    local o = {}
    for k, v in pairs(opts or {}) do o[k] = v end
    o.limit = limit
    repeat
      o.start_after = nk
      local items
      items, nk = assert(db:query_page(pk, o))
      for _, it in ipairs(items) do got[#got + 1] = it[field or "SK"] end
    until nk == nil
    return got
  end

  local function filtered(pred)
    local out = {}
    for _, v in ipairs(model) do if pred(v) then out[#out + 1] = v end end
    return out
  end

  local function reversed(t)
    local out = {}
    for i = #t, 1, -1 do out[#out + 1] = t[i] end
    return out
  end

  it("returns every value in byte order, both ways, and gets each one", function()
    assert.same(model, sks("p"))
    assert.same(reversed(model), sks("p", { scan_index_forward = false }))
    for _, v in ipairs(vals) do
      local it = db:get_item { PK = "p", SK = v }
      assert.is_table(it)
      assert.equal(v, it.SK)
    end
    -- a value sharing a stored one's prefix is not found
    assert.is_nil(db:get_item { PK = "p", SK = string.rep("s", 200) .. "not there" })
    assert.is_true(db:check().ok)
  end)

  it("pages through exactly once with any page size, both ways", function()
    for _, limit in ipairs({ 1, 2, 3, 7, 50 }) do
      assert.same(model, paged("p", nil, limit))
      assert.same(reversed(model), paged("p", { scan_index_forward = false }, limit))
    end
  end)

  it("meets every key condition exactly, with long and short bounds", function()
    local r = rng(7)
    for _ = 1, 60 do
      local a = model[1 + r(#model)]
      local b = model[1 + r(#model)]
      if bytes_less(b, a) then a, b = b, a end
      -- a bound that is no stored value: cut or extended
      local c = r(2) == 0 and a:sub(1, math.max(0, #a - 1 - r(3))) or a .. "b"
      local function le(x, y) return not bytes_less(y, x) end
      assert.same(filtered(function(v) return v == a end), sks("p", { eq = a }))
      assert.same(filtered(function(v) return bytes_less(v, c) end), sks("p", { lt = c }))
      assert.same(filtered(function(v) return le(v, c) end), sks("p", { le = c }))
      assert.same(filtered(function(v) return bytes_less(c, v) end), sks("p", { gt = c }))
      assert.same(filtered(function(v) return le(c, v) end), sks("p", { ge = c }))
      assert.same(filtered(function(v) return le(a, v) and le(v, b) end),
        sks("p", { between = { a, b } }))
      assert.same(reversed(filtered(function(v) return le(a, v) and le(v, b) end)),
        sks("p", { between = { a, b }, scan_index_forward = false }))
      assert.same(filtered(function(v) return v:sub(1, #c) == c end),
        sks("p", { begins_with = c }))
      assert.same(filtered(function(v) return le(c, v) end), sks("p", { starts_with = c }))
      assert.same(reversed(filtered(function(v) return le(v, c) end)),
        sks("p", { starts_with = c, scan_index_forward = false }))
      assert.same(filtered(function(v) return le(a, v) and le(v, b) end),
        paged("p", { between = { a, b } }, 2))
    end
  end)

  it("answers a bound longer than any key", function()
    local huge = string.rep("s", 5000)
    assert.same(filtered(function(v) return bytes_less(v, huge) end), sks("p", { lt = huge }))
    assert.same({}, sks("p", { eq = huge }))
    assert.same(filtered(function(v) return v:sub(1, 300) == huge:sub(1, 300) end),
      sks("p", { begins_with = huge:sub(1, 300) }))
  end)

  it("orders a GSI and an LSI by their long sort values, then the table key", function()
    assert.same(model, sks("G", { index = "by_g" }))
    assert.same(model, paged("G", { index = "by_g" }, 3))
    assert.same(reversed(model), paged("G", { index = "by_g", scan_index_forward = false }, 4))
    local lks = {}
    for i = 1, #vals do lks[i] = string.rep("k", 170) .. string.format("%05d", i) end
    lks = sorted(lks)
    assert.same(lks, sks("p", { index = "by_lk" }, "lk"))
    assert.same(lks, paged("p", { index = "by_lk" }, 5, "lk"))
    assert.same(lks, paged("L", { index = "by_l" }, 6, "lk"))
    -- many items with one long GSI sort value: ordered by the table key
    db:batch_write(function(w)
      for i = 1, 30 do
        w:put_item { PK = "q", SK = string.rep("v", 300) .. string.format("%03d", i),
          g = "H", grp = "M", lk = string.rep("same", 60) }
      end
    end)
    local want = {}
    for i = 1, 30 do want[i] = string.rep("v", 300) .. string.format("%03d", i) end
    assert.same(want, paged("M", { index = "by_l" }, 4))
    assert.same(reversed(want), paged("M", { index = "by_l", scan_index_forward = false }, 7))
    assert.is_true(db:check().ok)
  end)

  it("scans every item once, also in segments and pages", function()
    local seen = {}
    for seg = 1, 3 do
      local nk
      repeat
        local items
        items, nk = assert(db:scan_page { segment = seg, segments = 3, limit = 4,
          start_after = nk })
        for _, it in ipairs(items) do
          assert.is_nil(seen[it.SK])
          seen[it.SK] = true
        end
      until nk == nil
    end
    local n = 0
    for _ in pairs(seen) do n = n + 1 end
    assert.equal(#model, n)
  end)

  it("updates and deletes items by their long keys", function()
    for i = 1, #vals, 3 do
      assert(db:update_item({ PK = "p", SK = vals[i] }, { set = { n = i } }))
    end
    for i = 2, #vals, 3 do assert(db:delete_item { PK = "p", SK = vals[i] }) end
    local left = {}
    for i = 1, #vals do
      if i % 3 ~= 2 then left[#left + 1] = vals[i] end
    end
    assert.same(sorted(left), sks("p"))
    for i = 1, #vals, 3 do assert.equal(i, db:get_item({ PK = "p", SK = vals[i] }).n) end
    assert.same(sorted(left), sks("G", { index = "by_g" }))
    assert.is_true(db:check().ok)
  end)
end)
