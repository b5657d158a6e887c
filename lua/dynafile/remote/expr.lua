--- dynafile.remote.expr: dynafile's filter and condition strings, as
-- DynamoDB expressions and as Lua predicates.
--
-- A string is first compiled by the core (so a syntax error reads exactly
-- as with a local database), then parsed here into a small tree, which is
-- translated into a DynamoDB expression (names and values as
-- placeholders, collected in a `names` builder shared by the whole
-- request); what runs in the client runs on the core's compiled form, on
-- a Lua item.  The tree follows the language of src/expr.c: `== = != <>
-- < <= > >=`, `in [...]`, `=~ /re/`, `and or not && || !`, parentheses,
-- `exists`, `begins_with`, `contains`, `size`, paths `a.b[0]` and
-- `` `any name` ``.
--
-- Invariant: the translation means what the local evaluator means.  Where
-- DynamoDB differs, the translation compensates: `x != v` holds only when x
-- exists (DynamoDB's `<>` also holds for a missing attribute), `in []` is
-- false.  A regular expression has no DynamoDB form: `translate` returns
-- nil and the caller evaluates it in the client (`eval`) or refuses.
-- @module dynafile.remote.expr

local core = require "dynafile.core"
local types = require "dynafile.types"
local values = require "dynafile.remote.values"

local type, pairs, ipairs, pcall, tonumber, tostring, error, next, rawequal, setmetatable =
  type, pairs, ipairs, pcall, tonumber, tostring, error, next, rawequal, setmetatable
local string_char, table_concat = string.char, table.concat
local math_tointeger = math.tointeger

local null = core.null

local M = {}

-- ------------------------------------------------------------- builder

--- Placeholders for one request: `#nK` names and `:vK` values.
-- @type names
local Names = {}
Names.__index = Names

--- A new, empty builder.
-- @treturn names the builder
-- @raise never
function M.names()
  return setmetatable({ n = {}, v = {}, by_name = {}, nn = 0, nv = 0 }, Names)
end

--- The placeholder of an attribute name (the same name, the same one).
-- @tparam string s the attribute name
-- @treturn string its placeholder, `#nK`
-- @raise never
function Names:name(s)
  local p = self.by_name[s]
  if p then return p end
  self.nn = self.nn + 1
  p = "#n" .. self.nn
  self.by_name[s] = p
  self.n[p] = s
  return p
end

--- The placeholder of a value (encoded now).
-- @param v the Lua value
-- @tparam string fn the calling function's name, for messages
-- @tparam[opt] string where what the value is, for messages
-- @treturn string its placeholder, `:vK`
-- @raise on a value DynamoDB cannot hold
function Names:value(v, fn, where)
  self.nv = self.nv + 1
  local p = ":v" .. self.nv
  self.v[p] = values.encode_value(v, fn, where or "value")
  return p
end

--- A document path, from segments.
-- @tparam table segs names (strings) and 0-based list positions (numbers)
-- @treturn string the path, every name a placeholder
-- @raise never
function Names:path(segs)
  local out = {}
  for i = 1, #segs do
    local s = segs[i]
    if type(s) == "number" then
      out[#out + 1] = "[" .. s .. "]"
    else
      if i > 1 then out[#out + 1] = "." end
      out[#out + 1] = self:name(s)
    end
  end
  return table_concat(out)
end

--- The text of a `dynafile.expr` object (a DynamoDB expression with its
-- names and values), its placeholders renamed into this builder's so that
-- they cannot meet the request's others.  DynamoDB's expressions have no
-- string literals: every `#name` and `:value` token is a placeholder.
-- Only the names and values the text uses are carried over (an object
-- made by `dynafile.expressions` holds those of its whole request).
-- @tparam table x the expression object
-- @tparam string fn the calling function's name, for messages
-- @treturn string the text with this builder's placeholders
-- @raise when a value cannot be a DynamoDB value
function Names:embed(x, fn)
  local map, names, vals = {}, x.names or {}, x.values or {}
  return (x.text:gsub("[#:][%w_]+", function(tok)
    local p = map[tok]
    if p then return p end
    if tok:sub(1, 1) == "#" then
      if names[tok] ~= nil then p = self:name(names[tok]) end
    elseif vals[tok] ~= nil then
      p = self:value(vals[tok], fn, tok)
    end
    map[tok] = p
    return p
  end))
end

-- Functions and keywords of DynamoDB's expressions, which are not names.
local DDB_WORDS = {
  attribute_exists = true, attribute_not_exists = true, attribute_type = true,
  begins_with = true, contains = true, size = true, list_append = true, if_not_exists = true,
  AND = true, OR = true, NOT = true, BETWEEN = true, IN = true,
  ["and"] = true, ["or"] = true, ["not"] = true, between = true, ["in"] = true,
}

--- The attribute names a `dynafile.expr` object's text mentions (at any
-- depth of a path: a superset of the top-level attributes it reads).
-- @tparam table x the expression object
-- @treturn table `{name = true}`
-- @raise never
function M.expression_names(x)
  local out, names = {}, x.names or {}
  for tok in x.text:gsub(":[%w_]+", " "):gmatch("#?[%a_][%w_]*") do
    if tok:sub(1, 1) == "#" then
      if names[tok] then out[names[tok]] = true end
    elseif not DDB_WORDS[tok] then
      out[tok] = true
    end
  end
  return out
end

--- Put the placeholders into a request (only those used).
-- @tparam table req the request
-- @treturn table req, with ExpressionAttributeNames and
--   ExpressionAttributeValues when there are any
-- @raise never
function Names:into(req)
  if next(self.n) then req.ExpressionAttributeNames = self.n end
  if next(self.v) then req.ExpressionAttributeValues = self.v end
  return req
end

-- ------------------------------------------------------------- lexer

local KEYWORDS = {
  ["and"] = "and", AND = "and", ["or"] = "or", OR = "or", ["not"] = "not", NOT = "not",
  ["in"] = "in", IN = "in", ["true"] = "true", TRUE = "true", ["false"] = "false",
  FALSE = "false", ["null"] = "null", NULL = "null",
}
local FUNCS = { exists = true, begins_with = true, contains = true, size = true }
local ESC = { n = "\n", t = "\t", r = "\r", ["0"] = "\0", ["\\"] = "\\", ['"'] = '"',
  ["'"] = "'", ["`"] = "`" }

local function quoted(src, i, q)
  -- src:sub(i, i) == q; returns the unescaped text and the index after it
  local out, j = {}, i + 1
  while true do
    local ch = src:sub(j, j)
    if ch == "" then error("unterminated quote", 0) end
    if ch == q then return table_concat(out), j + 1 end
    if ch == "\\" then
      local e = src:sub(j + 1, j + 1)
      if e == "x" then
        out[#out + 1] = string_char(tonumber(src:sub(j + 2, j + 3), 16))
        j = j + 4
      else
        out[#out + 1] = ESC[e] or ("\\" .. e)
        j = j + 2
      end
    else
      out[#out + 1] = ch
      j = j + 1
    end
  end
end

-- Tokens: {t = kind, v = value, segs = path segments}
local function lex(src)
  local toks, i, n = {}, 1, #src
  local function path(first, j)
    local segs = { first }
    while true do
      local ch = src:sub(j, j)
      if ch == "." then
        if src:sub(j + 1, j + 1) == "`" then
          local s
          s, j = quoted(src, j + 1, "`")
          segs[#segs + 1] = s
        else
          local s = src:match("^[%a_][%w_]*", j + 1)
          segs[#segs + 1] = s
          j = j + 1 + #s
        end
      elseif ch == "[" then
        local d = src:match("^%d+", j + 1)
        segs[#segs + 1] = tonumber(d)
        j = j + 2 + #d
      else
        return segs, j
      end
    end
  end
  while i <= n do
    local ch = src:sub(i, i)
    if ch:find("%s") then
      i = i + 1
    elseif ch == '"' or ch == "'" then
      local s
      s, i = quoted(src, i, ch)
      toks[#toks + 1] = { t = "lit", v = s }
    elseif ch == "`" then
      local s
      s, i = quoted(src, i, "`")
      local segs
      segs, i = path(s, i)
      toks[#toks + 1] = { t = "path", segs = segs }
    elseif ch == "/" then
      -- a regex (after =~): up to the next unescaped slash, then flags
      local j, out = i + 1, {}
      while true do
        local c = src:sub(j, j)
        if c == "\\" and src:sub(j + 1, j + 1) == "/" then
          out[#out + 1] = "/"
          j = j + 2
        elseif c == "/" then
          break
        else
          out[#out + 1] = c
          j = j + 1
        end
      end
      local flags = src:match("^i", j + 1) or ""
      toks[#toks + 1] = { t = "re", v = table_concat(out), flags = flags }
      i = j + 1 + #flags
    elseif src:find("^%-?%d", i) then
      local num = src:match("^%-?%d+%.?%d*[eE][%+%-]?%d+", i) or src:match("^%-?%d+%.?%d*", i)
      local v = tonumber(num)
      if math_tointeger and not num:find("[%.eE]") then v = math_tointeger(v) or v end
      toks[#toks + 1] = { t = "lit", v = v }
      i = i + #num
    elseif ch:find("[%a_]") then
      local w = src:match("^[%a_][%w_]*", i)
      local after = i + #w
      if FUNCS[w] and src:match("^%s*%(", after) then
        toks[#toks + 1] = { t = "fn", v = w }
        i = after
      elseif KEYWORDS[w] then
        local k = KEYWORDS[w]
        if k == "true" then
          toks[#toks + 1] = { t = "lit", v = true }
        elseif k == "false" then
          toks[#toks + 1] = { t = "lit", v = false }
        elseif k == "null" then
          toks[#toks + 1] = { t = "lit", v = null }
        else
          toks[#toks + 1] = { t = k }
        end
        i = after
      else
        local segs
        segs, i = path(w, after)
        toks[#toks + 1] = { t = "path", segs = segs }
      end
    else
      local two = src:sub(i, i + 1)
      local ops2 = { ["=="] = "==", ["!="] = "!=", ["<>"] = "!=", ["<="] = "<=",
        [">="] = ">=", ["=~"] = "=~", ["&&"] = "and", ["||"] = "or" }
      if ops2[two] then
        local o = ops2[two]
        toks[#toks + 1] = (o == "and" or o == "or") and { t = o } or { t = "op", v = o }
        i = i + 2
      elseif ch == "=" then
        toks[#toks + 1] = { t = "op", v = "==" }
        i = i + 1
      elseif ch == "<" or ch == ">" then
        toks[#toks + 1] = { t = "op", v = ch }
        i = i + 1
      elseif ch == "!" then
        toks[#toks + 1] = { t = "not" }
        i = i + 1
      else
        toks[#toks + 1] = { t = ch }
        i = i + 1
      end
    end
  end
  return toks
end

-- ------------------------------------------------------------- parser

local function parse(src)
  local toks, pos = lex(src), 1
  local function peek() return toks[pos] or { t = "eof" } end
  local function take(t)
    local tk = toks[pos]
    if not tk or (t and tk.t ~= t) then error("unexpected token", 0) end
    pos = pos + 1
    return tk
  end
  local expr
  local function operand()
    local tk = peek()
    if tk.t == "path" then
      take()
      return { k = "path", segs = tk.segs }
    elseif tk.t == "lit" then
      take()
      return { k = "lit", v = tk.v }
    elseif tk.t == "fn" and tk.v == "size" then
      take()
      take("(")
      local p = take("path")
      take(")")
      return { k = "size", segs = p.segs }
    end
    error("operand expected", 0)
  end
  local function primary()
    local tk = peek()
    if tk.t == "(" then
      take()
      local e = expr()
      take(")")
      return e
    elseif tk.t == "fn" and tk.v ~= "size" then
      take()
      take("(")
      if tk.v == "exists" then
        local p = take("path")
        take(")")
        return { k = "exists", segs = p.segs }
      end
      local a = operand()
      take(",")
      local b = operand()
      take(")")
      return { k = tk.v, a = a, b = b }
    end
    local a = operand()
    local op = peek()
    if op.t == "in" then
      take()
      take("[")
      local list = {}
      if peek().t ~= "]" then
        repeat
          list[#list + 1] = take("lit").v
        until peek().t ~= "," or not take(",")
      end
      take("]")
      return { k = "in", a = a, list = list }
    end
    take("op")
    if op.v == "=~" then
      local re = take("re")
      return { k = "match", a = a, re = re.v, flags = re.flags }
    end
    return { k = "cmp", op = op.v, a = a, b = operand() }
  end
  local function unary()
    if peek().t == "not" then
      take()
      return { k = "not", x = unary() }
    end
    return primary()
  end
  local function chain(kind, sub)
    local first = sub()
    if peek().t ~= kind then return first end
    local list = { first }
    while peek().t == kind do
      take()
      list[#list + 1] = sub()
    end
    return { k = kind, list = list }
  end
  local function conj() return chain("and", unary) end
  expr = function() return chain("or", conj) end
  local tree = expr()
  if pos <= #toks then error("trailing tokens", 0) end
  return tree
end

--- Compile an expression string.
-- @tparam string src the expression
-- @treturn table|nil the tree
-- @treturn string the core's message when it does not parse
-- @raise never (errors are returned)
function M.compile(src)
  local compiled, msg = core.compile(src)
  if not compiled then return nil, msg end
  local pok, tree = pcall(parse, src)
  if not pok then return nil, "filter: " .. tostring(tree) end
  -- evaluated in the client by the core itself (M.eval)
  tree.compiled = compiled
  return tree
end

--- The top-level attribute names a tree reads.
-- @tparam table tree a compiled tree
-- @tparam[opt] table out a set to add them to
-- @treturn table the set `{name = true}`
-- @raise never
function M.attributes(tree, out)
  out = out or {}
  local k = tree.k
  if k == "and" or k == "or" then
    for _, x in ipairs(tree.list) do M.attributes(x, out) end
  elseif k == "not" then
    M.attributes(tree.x, out)
  elseif k == "exists" then
    out[tree.segs[1]] = true
  else
    for _, o in ipairs { tree.a or false, tree.b or false } do
      if o and o.segs then out[o.segs[1]] = true end
    end
  end
  return out
end

--- Whether a tree holds a regular expression (no DynamoDB form).
-- @tparam table tree a compiled tree
-- @treturn boolean
-- @raise never
function M.has_regex(tree)
  local k = tree.k
  if k == "match" then return true end
  if k == "and" or k == "or" then
    for _, x in ipairs(tree.list) do
      if M.has_regex(x) then return true end
    end
  elseif k == "not" then
    return M.has_regex(tree.x)
  end
  return false
end

-- ------------------------------------------------------------- to DynamoDB

local DDB_OP = { ["=="] = "=", ["!="] = "<>", ["<"] = "<", ["<="] = "<=", [">"] = ">",
  [">="] = ">=" }

local function operand_text(o, b, fn)
  if o.k == "path" then return b:path(o.segs) end
  if o.k == "size" then return "size(" .. b:path(o.segs) .. ")" end
  return b:value(o.v, fn)
end

-- An expression that never holds (DynamoDB has no literal false).
local function never(b)
  local p = b:path { "_" }
  return "(attribute_exists(" .. p .. ") AND attribute_not_exists(" .. p .. "))"
end

local ORDERING = { ["<"] = true, ["<="] = true, [">"] = true, [">="] = true }
local FLIP = { ["<"] = ">", ["<="] = ">=", [">"] = "<", [">="] = "<=" }

local function holds(op, x, y)
  if op == "<" then return x < y end
  if op == "<=" then return x <= y end
  if op == ">" then return x > y end
  return x >= y
end

-- An ordering (< <= > >=) in DynamoDB's terms.  DynamoDB orders numbers,
-- strings and binary only, and refuses any other literal operand; a local
-- database also orders booleans (false < true), and an ordering of values
-- of other types is false.  So: a boolean literal becomes equalities with
-- the booleans it orders, a literal of another type never holds, and two
-- paths also hold when both are booleans in order.
local function ordering(t, b, fn)
  local op, x, y = t.op, t.a, t.b
  if x.k == "lit" and y.k ~= "lit" then
    x, y, op = y, x, FLIP[op]
  end
  if y.k == "lit" then
    local v = y.v
    local tv = type(v)
    if x.k == "lit" then
      if tv == type(x.v) and (tv == "number" or tv == "string" or tv == "boolean") then
        local nx, ny = x.v, v
        if tv == "boolean" then nx, ny = nx and 1 or 0, ny and 1 or 0 end
        if holds(op, nx, ny) then return "(NOT " .. never(b) .. ")" end
      end
      return never(b)
    end
    if tv == "boolean" then
      if x.k ~= "path" then return never(b) end
      local n, ok = v and 1 or 0, {}
      for _, candidate in ipairs { false, true } do
        if holds(op, candidate and 1 or 0, n) then ok[#ok + 1] = candidate end
      end
      if #ok == 0 then return never(b) end
      local p = b:path(x.segs)
      for i, candidate in ipairs(ok) do ok[i] = p .. " = " .. b:value(candidate, fn) end
      return "(" .. table_concat(ok, " OR ") .. ")"
    end
    if tv ~= "number" and tv ~= "string" then return never(b) end
    return operand_text(x, b, fn) .. " " .. op .. " " .. b:value(v, fn)
  end
  local a, c = operand_text(x, b, fn), operand_text(y, b, fn)
  local s = a .. " " .. op .. " " .. c
  if x.k == "path" and y.k == "path" then
    local pairs_in_order = {}
    for _, p in ipairs { false, true } do
      for _, q in ipairs { false, true } do
        if holds(op, p and 1 or 0, q and 1 or 0) then
          pairs_in_order[#pairs_in_order + 1] = "(" .. a .. " = " .. b:value(p, fn) .. " AND "
            .. c .. " = " .. b:value(q, fn) .. ")"
        end
      end
    end
    s = "(" .. s .. " OR " .. table_concat(pairs_in_order, " OR ") .. ")"
  end
  return s
end

local function same_operand(x, y)
  if x.k ~= y.k or x.k == "lit" or #x.segs ~= #y.segs then return false end
  for i = 1, #x.segs do
    if x.segs[i] ~= y.segs[i] then return false end
  end
  return true
end

-- (a boolean by equality: dynalite's attribute_type misses a false BOOL)
local function of_types(p, b, fn, list)
  local out = {}
  for i, ty in ipairs(list) do
    out[i] = ty == "BOOL" and p .. " = " .. b:value(false, fn) .. " OR " .. p .. " = "
      .. b:value(true, fn) or "attribute_type(" .. p .. ", " .. b:value(ty, fn) .. ")"
  end
  return table_concat(out, " OR ")
end

-- A comparison of an operand with itself, which DynamoDB refuses ("the
-- first operand must be distinct"): what it means locally.  A value equals
-- itself when present; strings, numbers and booleans are ordered; a size
-- is one of a string, binary, set, list or map.
local function with_itself(t, b, fn)
  local op = t.op
  if op == "!=" or op == "<" or op == ">" then return never(b) end
  local p = b:path(t.a.segs)
  if t.a.k == "size" then
    return "(attribute_exists(" .. p .. ") AND NOT (" .. of_types(p, b, fn, { "N", "BOOL", "NULL" })
      .. "))"
  end
  if op == "==" then return "attribute_exists(" .. p .. ")" end
  return "(" .. of_types(p, b, fn, { "S", "N", "BOOL" }) .. ")"
end

local function translate(t, b, fn)
  local k = t.k
  if k == "cmp" and same_operand(t.a, t.b) then return with_itself(t, b, fn) end
  if k == "cmp" and ORDERING[t.op] then return ordering(t, b, fn) end
  if k == "and" or k == "or" then
    local parts = {}
    for i, x in ipairs(t.list) do parts[i] = translate(x, b, fn) end
    return "(" .. table_concat(parts, k == "and" and " AND " or " OR ") .. ")"
  elseif k == "not" then
    return "(NOT " .. translate(t.x, b, fn) .. ")"
  elseif k == "exists" then
    return "attribute_exists(" .. b:path(t.segs) .. ")"
  elseif k == "cmp" then
    local a, c = operand_text(t.a, b, fn), operand_text(t.b, b, fn)
    local s = a .. " " .. DDB_OP[t.op] .. " " .. c
    if t.op == "!=" then
      -- dynafile: a missing attribute makes != false as well
      local guards = {}
      for _, o in ipairs { t.a, t.b } do
        if o.k ~= "lit" then guards[#guards + 1] = "attribute_exists(" .. b:path(o.segs) .. ")" end
      end
      guards[#guards + 1] = s
      s = "(" .. table_concat(guards, " AND ") .. ")"
    end
    return s
  elseif k == "in" then
    local a = operand_text(t.a, b, fn)
    if #t.list == 0 then
      local p = t.a.segs and b:path(t.a.segs) or b:name("_")
      return "(attribute_exists(" .. p .. ") AND attribute_not_exists(" .. p .. "))"
    end
    local vs = {}
    for i, v in ipairs(t.list) do vs[i] = b:value(v, fn) end
    return a .. " IN (" .. table_concat(vs, ", ") .. ")"
  elseif k == "begins_with" or k == "contains" then
    return k .. "(" .. operand_text(t.a, b, fn) .. ", " .. operand_text(t.b, b, fn) .. ")"
  end
  error("dynafile: regular expressions have no DynamoDB form", 0)
end

--- The DynamoDB form of a tree, its placeholders added to `b`; nil when
-- it has none (a regular expression).
-- @tparam table tree a compiled tree
-- @tparam names b the request's builder
-- @tparam string fn the calling function's name, for messages
-- @treturn string|nil the expression
-- @raise when a literal cannot be a DynamoDB value
function M.translate(tree, b, fn)
  if M.has_regex(tree) then return nil end
  return translate(tree, b, fn)
end

-- ------------------------------------------------------------- in Lua

local types_type = types.type

-- Whether two Lua values are the same DynamoDB value: of one type, sets
-- equal as sets (in any order), binary values by their bytes, decimals by
-- their value, lists and maps element by element.
local function deep_equal(a, b)
  if rawequal(a, b) then return true end
  local ta = types_type(a)
  if ta ~= types_type(b) then return false end
  if ta == "SS" or ta == "NS" or ta == "BS" then
    if #a ~= #b then return false end
    for i = 1, #a do
      if not b:contains(a[i]) then return false end
    end
    return true
  end
  if ta ~= "M" and ta ~= "L" then return a == b end
  for k, v in pairs(a) do
    if not deep_equal(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end
M.deep_equal = deep_equal

--- Evaluate a tree on a Lua item, with the core's own evaluator (the one
-- a local database runs on stored items), so every type -- sets, binary
-- values, decimals -- compares, orders and measures as it does locally.
-- @tparam table tree a compiled tree (from `compile`)
-- @tparam[opt] table item the item (nil: no item)
-- @treturn boolean whether it holds
-- @raise on an item the core cannot encode
function M.eval(tree, item)
  return tree.compiled:eval(item)
end

return M
