-- A differential test of the expression compiler: a generated corpus of
-- conditions, each written both in dynafile's filter syntax and in
-- DynamoDB's syntax (dynafile.expr), evaluated by scans over a generated
-- corpus of items; both must select exactly the same items.  The forms
-- are built from one tree, written where both languages mean the same:
-- dynafile's `a != v` is false on a missing `a`, DynamoDB's `a <> :v`
-- true, so != is written `(attribute_exists(a) AND a <> :v)`.
local dynafile = require "dynafile"

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  return p .. "-diff"
end

-- A small deterministic generator, the same on every Lua version (the
-- products stay below 2^53, exact in doubles too).
local function rng(seed)
  local s = seed % 2147483647
  return function(n)
    s = (s * 16807) % 2147483647
    return s % n + 1
  end
end

local ATTRS = { "a", "b", "s", "l", "m.x", "m.y" }
local NUMS = { -1, 0, 1, 2, 2.5, 3, 10 }
local STRS = { "", "a", "ab", "abc", "b", "zz" }

local function gen_value(r)
  if r(2) == 1 then return NUMS[r(#NUMS)] end
  return STRS[r(#STRS)]
end

local function gen_item(r, i)
  local it = { PK = "p", SK = i }
  local function maybe(k, v) if r(4) > 1 then it[k] = v end end
  maybe("a", gen_value(r))
  maybe("b", gen_value(r))
  maybe("s", STRS[r(#STRS)])
  if r(3) > 1 then
    local l = {}
    for j = 1, r(4) - 1 do l[j] = gen_value(r) end
    it.l = dynafile.array(l)
  end
  if r(3) > 1 then it.m = { x = gen_value(r), y = r(2) == 1 and gen_value(r) or nil } end
  return it
end

-- A condition tree: { op, ... }.
local function gen_cond(r, depth)
  local k = depth > 2 and r(9) or r(12)
  local a = ATTRS[r(#ATTRS)]
  if k == 1 then return { "cmp", a, ({ "==", "<", "<=", ">", ">=" })[r(5)], gen_value(r) } end
  if k == 2 then return { "ne", a, gen_value(r) } end
  if k == 3 then return { "between", a, NUMS[r(#NUMS)], NUMS[r(#NUMS)] } end
  if k == 4 then return { "in", a, gen_value(r), gen_value(r), gen_value(r) } end
  if k == 5 then return { "exists", a } end
  if k == 6 then return { "begins", a, STRS[r(#STRS)] } end
  if k == 7 then return { "contains", a, gen_value(r) } end
  if k == 8 then return { "size", a, ({ "==", "<", ">=" })[r(3)], r(4) - 1 } end
  if k == 9 then -- DynamoDB refuses a = a: another attribute
    local b = ATTRS[r(#ATTRS)]
    if b == a then b = a == "b" and "a" or "b" end
    return { "cmpattr", a, ({ "==", "<", ">=" })[r(3)], b }
  end
  if k == 10 then return { "not", gen_cond(r, depth + 1) } end
  if k == 11 then return { "and", gen_cond(r, depth + 1), gen_cond(r, depth + 1) } end
  return { "or", gen_cond(r, depth + 1), gen_cond(r, depth + 1) }
end

local function lit(v)
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v)
end

-- dynafile's filter syntax
local function to_dynafile(c)
  local op = c[1]
  if op == "cmp" then return c[2] .. " " .. c[3] .. " " .. lit(c[4]) end
  if op == "ne" then return c[2] .. " != " .. lit(c[3]) end
  if op == "between" then
    return "(" .. c[2] .. " >= " .. lit(c[3]) .. " and " .. c[2] .. " <= " .. lit(c[4]) .. ")"
  end
  if op == "in" then
    return c[2] .. " in [" .. lit(c[3]) .. ", " .. lit(c[4]) .. ", " .. lit(c[5]) .. "]"
  end
  if op == "exists" then return "exists(" .. c[2] .. ")" end
  if op == "begins" then return "begins_with(" .. c[2] .. ", " .. lit(c[3]) .. ")" end
  if op == "contains" then return "contains(" .. c[2] .. ", " .. lit(c[3]) .. ")" end
  if op == "size" then return "size(" .. c[2] .. ") " .. c[3] .. " " .. c[4] end
  if op == "cmpattr" then return c[2] .. " " .. c[3] .. " " .. c[4] end
  if op == "not" then return "not (" .. to_dynafile(c[2]) .. ")" end
  return "(" .. to_dynafile(c[2]) .. " " .. op .. " " .. to_dynafile(c[3]) .. ")"
end

-- DynamoDB's syntax; values become :v1, :v2, ...
local function to_ddb(c, values)
  local function val(v)
    local k = ":v" .. (#values + 1)
    values[#values + 1] = { k, v }
    return k
  end
  local op = c[1]
  local function cmp(o) return o == "==" and "=" or o end
  if op == "cmp" then return c[2] .. " " .. cmp(c[3]) .. " " .. val(c[4]) end
  if op == "ne" then
    return "(attribute_exists(" .. c[2] .. ") AND " .. c[2] .. " <> " .. val(c[3]) .. ")"
  end
  if op == "between" then
    if c[3] > c[4] then -- DynamoDB refuses lo > hi: the same empty test
      return "(" .. c[2] .. " >= " .. val(c[3]) .. " AND " .. c[2] .. " <= " .. val(c[4]) .. ")"
    end
    return c[2] .. " BETWEEN " .. val(c[3]) .. " AND " .. val(c[4])
  end
  if op == "in" then
    return c[2] .. " IN (" .. val(c[3]) .. ", " .. val(c[4]) .. ", " .. val(c[5]) .. ")"
  end
  if op == "exists" then return "attribute_exists(" .. c[2] .. ")" end
  if op == "begins" then return "begins_with(" .. c[2] .. ", " .. val(c[3]) .. ")" end
  if op == "contains" then return "contains(" .. c[2] .. ", " .. val(c[3]) .. ")" end
  if op == "size" then return "size(" .. c[2] .. ") " .. cmp(c[3]) .. " " .. val(c[4]) end
  if op == "cmpattr" then return c[2] .. " " .. cmp(c[3]) .. " " .. c[4] end
  -- DynamoDB refuses redundant parentheses: wrap only what is not wrapped
  local function wrap(t)
    if t:sub(1, 1) == "(" then
      local depth = 0
      for i = 1, #t do
        local ch = t:sub(i, i)
        if ch == "(" then depth = depth + 1 elseif ch == ")" then depth = depth - 1 end
        if depth == 0 then
          if i == #t then return t end
          break
        end
      end
    end
    return "(" .. t .. ")"
  end
  if op == "not" then return "NOT " .. wrap(to_ddb(c[2], values)) end
  return "(" .. wrap(to_ddb(c[2], values)) .. " " .. op:upper() .. " "
    .. wrap(to_ddb(c[3], values)) .. ")"
end

describe("the expression compiler, differentially", function()
  local dir, db

  setup(function()
    dir = tmpdir()
    db = assert(dynafile.open(dir, { pk = "PK", sk = "SK" }))
    local r = rng(20261206)
    for i = 1, 80 do assert(db:put_item(gen_item(r, i))) end
  end)

  teardown(function()
    db:close()
    os.execute("rm -rf '" .. dir .. "'")
  end)

  local function selected(filter)
    local out = {}
    for it in db:query("p", { filter = filter }) do out[#out + 1] = it.SK end
    return table.concat(out, ",")
  end

  it("selects the same items in dynafile's and DynamoDB's syntax", function()
    local r = rng(42)
    local compared, nonempty = 0, 0
    for _ = 1, 400 do
      local c = gen_cond(r, 0)
      local values = {}
      local ddb = to_ddb(c, values)
      local vt = {}
      for _, kv in ipairs(values) do vt[kv[1]] = kv[2] end
      local a = selected(to_dynafile(c))
      local b = selected(dynafile.expr(ddb, nil, next(vt) and vt or nil))
      assert.equal(a, b, to_dynafile(c) .. "  vs  " .. ddb)
      compared = compared + 1
      if a ~= "" then nonempty = nonempty + 1 end
    end
    assert.equal(400, compared)
    -- the corpus is not degenerate: many conditions select something
    assert.is_true(nonempty > 80, "only " .. nonempty .. " conditions selected items")
  end)
end)
