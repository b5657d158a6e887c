--- dynafile.serve.partiql: ExecuteStatement, BatchExecuteStatement and
-- ExecuteTransaction -- DynamoDB's PartiQL.
--
-- The statements DynamoDB accepts:
--
--     SELECT * | path, ... FROM "Table"[."Index"] [WHERE cond]
--            [ORDER BY key [ASC|DESC]]
--     INSERT INTO "Table" VALUE {'attr': value, ...}
--     UPDATE "Table" SET path = value [, ...] | REMOVE path [, ...] ...
--            WHERE cond [RETURNING ALL|MODIFIED OLD|NEW *]
--     DELETE FROM "Table" WHERE cond [RETURNING ALL OLD *]
--     EXISTS(SELECT * FROM "Table" WHERE cond)   (ExecuteTransaction only)
--
-- with `?` parameters, PartiQL literals ('text', numbers, TRUE, FALSE,
-- NULL, {'k': v} maps, [v, ...] lists, <<v, ...>> sets), paths (a.b[0]),
-- comparisons, BETWEEN, IN, IS [NOT] MISSING|NULL, AND/OR/NOT and the
-- functions begins_with, contains, attribute_type, size, and in updates
-- list_append, set_add, set_delete, if_not_exists.
--
-- A statement is parsed here and translated into the request of the
-- operation that does the work -- Query or Scan (a WHERE equality on the
-- partition key makes a Query; the other conditions become the filter),
-- PutItem (INSERT, with a condition that the item does not exist),
-- UpdateItem (UPDATE, the item must exist), DeleteItem,
-- TransactWriteItems/TransactGetItems -- with DynamoDB expressions and
-- generated #names and :values, so every rule of those operations
-- applies to PartiQL too.
--
-- Invariant: a statement that does not parse, or names the key wrongly,
-- is refused before any table is touched.
-- @module dynafile.serve.partiql

local errors = require "dynafile.serve.errors"
local catalog = require "dynafile.serve.catalog"
local values = require "dynafile.serve.values"
local tables = require "dynafile.serve.tables"
local json = require "dynafile.serve.json"
local ddbjson = require "dynafile.ddbjson"

local pairs, ipairs, tostring, tonumber, type, pcall, error, setmetatable, next =
  pairs, ipairs, tostring, tonumber, type, pcall, error, setmetatable, next
local string_sub, string_find, string_match, string_upper, string_format =
  string.sub, string.find, string.match, string.upper, string.format
local table_concat = table.concat

local M = {}

local validation = errors.validation
local capacity = require "dynafile.serve.capacity"
local size = require "dynafile.serve.size"
local ops -- the operation functions (register)

-- The operations PartiQL calls answer with tables, not JSON text.
local function internal(ctx)
  -- partiql: UpdateItem then weighs only the finished item, as DynamoDB's
  -- PartiQL UPDATE does
  return setmetatable({ internal = true, partiql = true }, { __index = ctx })
end

local function malformed(detail)
  validation("Statement wasn't well formed, can't be processed: %s", detail)
end

-- ------------------------------------------------------------ lexer

local KEYWORDS = {
  SELECT = true, FROM = true, WHERE = true, INSERT = true, INTO = true, VALUE = true,
  UPDATE = true, SET = true, REMOVE = true, DELETE = true, AND = true, OR = true, NOT = true,
  BETWEEN = true, IN = true, IS = true, MISSING = true, NULL = true, TRUE = true, FALSE = true,
  RETURNING = true, ALL = true, MODIFIED = true, OLD = true, NEW = true, ORDER = true, BY = true,
  ASC = true, DESC = true, EXISTS = true, VALUES = true,
}

local function lex(src)
  local toks = {}
  local i, n = 1, #src
  while i <= n do
    local c = string_sub(src, i, i)
    if string_find(c, "%s") then
      i = i + 1
    elseif c == "'" then
      local buf, j = {}, i + 1
      while true do
        if j > n then malformed("Unterminated string literal") end
        local d = string_sub(src, j, j)
        if d == "'" then
          if string_sub(src, j + 1, j + 1) == "'" then
            buf[#buf + 1] = "'"
            j = j + 2
          else
            break
          end
        else
          buf[#buf + 1] = d
          j = j + 1
        end
      end
      toks[#toks + 1] = { t = "str", v = table_concat(buf) }
      i = j + 1
    elseif c == '"' then
      local buf, j = {}, i + 1
      while true do
        if j > n then malformed("Unterminated quoted identifier") end
        local d = string_sub(src, j, j)
        if d == '"' then
          if string_sub(src, j + 1, j + 1) == '"' then
            buf[#buf + 1] = '"'
            j = j + 2
          else
            break
          end
        else
          buf[#buf + 1] = d
          j = j + 1
        end
      end
      toks[#toks + 1] = { t = "id", v = table_concat(buf), quoted = true }
      i = j + 1
    elseif string_find(c, "[%a_]") then
      local word = string_match(src, "^[%w_]+", i)
      local up = string_upper(word)
      if KEYWORDS[up] then
        toks[#toks + 1] = { t = "kw", v = up, raw = word }
      else
        toks[#toks + 1] = { t = "id", v = word }
      end
      i = i + #word
    elseif string_find(c, "%d") or (c == "." and string_find(string_sub(src, i + 1, i + 1),
      "%d")) then
      local num = string_match(src, "^%d*%.?%d*[eE][-+]?%d+", i) or string_match(src, "^%d*%.?%d*",
        i)
      toks[#toks + 1] = { t = "num", v = num }
      i = i + #num
    else
      local two = string_sub(src, i, i + 1)
      if two == "<=" or two == ">=" or two == "<>" or two == "!=" or two == "<<" or two == ">>" then
        toks[#toks + 1] = { t = "op", v = two }
        i = i + 2
      elseif string_find(c, "[%(%)%[%]{},.:?*=<>+%-;]") then
        toks[#toks + 1] = { t = "op", v = c }
        i = i + 1
      else
        malformed("Unexpected character: " .. c)
      end
    end
  end
  toks[#toks + 1] = { t = "eof" }
  return toks
end

-- ------------------------------------------------------------ parser

local P = {}
P.__index = P

local function parser(src, params)
  return setmetatable({ toks = lex(src), pos = 1, params = params or {}, nparam = 0 }, P)
end

function P:peek(k) return self.toks[self.pos + (k or 0)] end
function P:next()
  local t = self.toks[self.pos]
  self.pos = self.pos + 1
  return t
end
function P:is(t, v)
  local x = self.toks[self.pos]
  return x.t == t and (v == nil or x.v == v)
end
function P:accept(t, v)
  if self:is(t, v) then return self:next() end
  return nil
end
function P:expect(t, v, what)
  local x = self:accept(t, v)
  if not x then
    local got = self:peek()
    malformed(string_format("Expected %s, found %s", what or tostring(v or t),
      got.t == "eof" and "end of statement" or tostring(got.raw or got.v)))
  end
  return x
end

-- A name: a quoted or bare identifier.
function P:name(what)
  local t = self:peek()
  if t.t == "id" then
    self:next()
    return t.v
  end
  if t.t == "kw" then
    -- keywords are allowed as attribute names when quoted only; bare ones
    -- that DynamoDB reserves are refused
    malformed("Expected identifier for " .. (what or "simple path"))
  end
  malformed("Expected identifier for " .. (what or "simple path"))
end

-- A path: name ('.' name | '[' n ']')*
function P:path()
  local p = { self:name() }
  while true do
    if self:accept("op", ".") then
      p[#p + 1] = self:name()
    elseif self:accept("op", "[") then
      local n = self:expect("num", nil, "list index")
      p[#p + 1] = tonumber(n.v)
      self:expect("op", "]")
    else
      break
    end
  end
  return p
end

-- A literal value (or ?), as an AttributeValue.
function P:literal()
  local t = self:peek()
  if t.t == "op" and t.v == "?" then
    self:next()
    self.nparam = self.nparam + 1
    local v = self.params[self.nparam]
    if v == nil then
      validation("Number of parameters in request and statement don't match.")
    end
    return v
  end
  if t.t == "str" then
    self:next()
    return { S = t.v }
  end
  if t.t == "num" then
    self:next()
    return { N = t.v }
  end
  if t.t == "op" and t.v == "-" and self:peek(1).t == "num" then
    self:next()
    return { N = "-" .. self:next().v }
  end
  if t.t == "kw" then
    if t.v == "TRUE" or t.v == "FALSE" then
      self:next()
      return { BOOL = t.v == "TRUE" }
    end
    if t.v == "NULL" then
      self:next()
      return { NULL = true }
    end
  end
  if t.t == "op" and t.v == "{" then
    self:next()
    local m = {}
    if not self:accept("op", "}") then
      repeat
        local k = self:peek()
        if k.t ~= "str" and not (k.t == "op" and k.v == "?") then
          malformed("Expected a string key in a tuple")
        end
        local key = self:literal()
        if not key.S then malformed("Tuple keys must be strings") end
        self:expect("op", ":")
        m[key.S] = self:literal()
      until not self:accept("op", ",")
      self:expect("op", "}")
    end
    return { M = m }
  end
  if t.t == "op" and t.v == "[" then
    self:next()
    local l = {}
    if not self:accept("op", "]") then
      repeat l[#l + 1] = self:literal() until not self:accept("op", ",")
      self:expect("op", "]")
    end
    return { L = l }
  end
  if t.t == "op" and t.v == "<<" then
    self:next()
    local l = {}
    repeat l[#l + 1] = self:literal() until not self:accept("op", ",")
    self:expect("op", ">>")
    local kind
    for _, av in ipairs(l) do
      local k = av.S and "SS" or av.N and "NS" or av.B and "BS"
      if not k then validation("Sets can only hold strings, numbers or binaries") end
      if kind and kind ~= k then validation("Set elements must all be of one type") end
      kind = k
    end
    local out = {}
    for i, av in ipairs(l) do out[i] = av.S or av.N or av.B end
    return { [kind] = out }
  end
  malformed("Expected a value, found " .. tostring(t.raw or t.v or "end of statement"))
end

-- Conditions: a tree of {op=..., ...} nodes.
--   {op = "cmp", cmp = "=", a = operand, b = operand}
--   {op = "between", a, lo, hi}, {op = "in", a, list}
--   {op = "and"|"or", a, b}, {op = "not", a}
--   {op = "fn", name, args}, {op = "missing", a, neg}, {op = "isnull", a, neg}
-- Operands: {path = {...}} | {value = av} | {fn = "size", args}
local FUNCS = { begins_with = true, contains = true, attribute_type = true, size = true,
  attribute_exists = true, attribute_not_exists = true }

function P:operand()
  local t = self:peek()
  if t.t == "id" and self:peek(1).t == "op" and self:peek(1).v == "(" then
    local fname = t.v:lower()
    if FUNCS[fname] then
      self:next()
      self:next()
      local args = {}
      if not self:accept("op", ")") then
        repeat args[#args + 1] = self:operand() until not self:accept("op", ",")
        self:expect("op", ")")
      end
      return { fn = fname, args = args }
    end
    malformed("Unsupported function: " .. t.v)
  end
  if t.t == "id" then return { path = self:path() } end
  return { value = self:literal() }
end

local CMP = { ["="] = true, ["<>"] = true, ["!="] = true, ["<"] = true, ["<="] = true,
  [">"] = true, [">="] = true }

function P:predicate()
  if self:accept("op", "(") then
    local c = self:condition()
    self:expect("op", ")")
    return c
  end
  if self:accept("kw", "NOT") then return { op = "not", a = self:predicate() } end
  local a = self:operand()
  if a.fn and a.fn ~= "size" then return { op = "fn", name = a.fn, args = a.args } end
  local t = self:peek()
  if t.t == "op" and CMP[t.v] then
    self:next()
    return { op = "cmp", cmp = t.v == "!=" and "<>" or t.v, a = a, b = self:operand() }
  end
  if t.t == "kw" and t.v == "BETWEEN" then
    self:next()
    local lo = self:operand()
    self:expect("kw", "AND")
    return { op = "between", a = a, lo = lo, hi = self:operand() }
  end
  if t.t == "kw" and t.v == "IN" then
    self:next()
    local list = {}
    local close = "]"
    if self:accept("op", "(") then close = ")" else self:expect("op", "[") end
    repeat list[#list + 1] = self:operand() until not self:accept("op", ",")
    self:expect("op", close)
    return { op = "in", a = a, list = list }
  end
  if t.t == "kw" and t.v == "IS" then
    self:next()
    local neg = self:accept("kw", "NOT") ~= nil
    if self:accept("kw", "MISSING") then return { op = "missing", a = a, neg = neg } end
    self:expect("kw", "NULL", "MISSING or NULL")
    return { op = "isnull", a = a, neg = neg }
  end
  malformed("Expected a comparison, found " .. tostring(t.raw or t.v or "end of statement"))
end

function P:conj()
  local a = self:predicate()
  while self:accept("kw", "AND") do a = { op = "and", a = a, b = self:predicate() } end
  return a
end

function P:condition()
  local a = self:conj()
  while self:accept("kw", "OR") do a = { op = "or", a = a, b = self:conj() } end
  return a
end

function P:from()
  local parts = {}
  repeat
    local t = self:peek()
    if t.t ~= "id" then malformed("Expected identifier for table name") end
    self:next()
    if t.v == "" then validation("Path component cannot be an empty string") end
    parts[#parts + 1] = t.v
  until not self:accept("op", ".")
  if #parts > 2 then validation("A path may contain at most 2 components in the FROM clause") end
  return parts[1], parts[2]
end

function P:returning()
  if not self:accept("kw", "RETURNING") then return nil end
  local which = self:next()
  local age = self:next()
  self:expect("op", "*")
  if not (which.v == "ALL" or which.v == "MODIFIED") or not (age.v == "OLD" or age.v == "NEW") then
    malformed("Invalid RETURNING clause")
  end
  return which.v .. " " .. age.v
end

function P:statement()
  local t = self:next()
  local st
  if t.t == "kw" and t.v == "SELECT" then
    st = { kind = "select" }
    if self:accept("op", "*") then
      st.all = true
    else
      st.paths = {}
      repeat st.paths[#st.paths + 1] = self:path() until not self:accept("op", ",")
    end
    self:expect("kw", "FROM")
    st.table, st.index = self:from()
    if self:accept("kw", "WHERE") then st.where = self:condition() end
    if self:accept("kw", "ORDER") then
      self:expect("kw", "BY")
      st.order = self:path()
      if self:accept("kw", "DESC") then st.desc = true else self:accept("kw", "ASC") end
    end
  elseif t.t == "kw" and t.v == "INSERT" then
    st = { kind = "insert" }
    self:expect("kw", "INTO")
    st.table, st.index = self:from()
    if st.index then malformed("FROM clause may only contain a single table name") end
    if not self:accept("kw", "VALUE") then self:expect("kw", "VALUES", "VALUE") end
    st.value = self:literal()
    if not st.value.M then malformed("INSERT needs a tuple {'attr': value, ...}") end
  elseif t.t == "kw" and t.v == "UPDATE" then
    st = { kind = "update", sets = {}, removes = {} }
    st.table, st.index = self:from()
    local any = false
    while true do
      if self:accept("kw", "SET") then
        repeat
          local path = self:path()
          self:expect("op", "=")
          st.sets[#st.sets + 1] = { path = path, value = self:update_value() }
        until not self:accept("op", ",")
        any = true
      elseif self:accept("kw", "REMOVE") then
        repeat st.removes[#st.removes + 1] = self:path() until not self:accept("op", ",")
        any = true
      else
        break
      end
    end
    if not any then malformed("UPDATE needs SET or REMOVE") end
    self:expect("kw", "WHERE")
    st.where = self:condition()
    st.returning = self:returning()
  elseif t.t == "kw" and t.v == "DELETE" then
    st = { kind = "delete" }
    self:expect("kw", "FROM")
    st.table, st.index = self:from()
    self:expect("kw", "WHERE")
    st.where = self:condition()
    st.returning = self:returning()
  elseif t.t == "kw" and t.v == "EXISTS" then
    self:expect("op", "(")
    self:expect("kw", "SELECT")
    self:expect("op", "*")
    self:expect("kw", "FROM")
    st = { kind = "exists" }
    st.table, st.index = self:from()
    self:expect("kw", "WHERE")
    st.where = self:condition()
    self:expect("op", ")")
  else
    malformed("Expected data manipulation")
  end
  self:accept("op", ";")
  if not self:is("eof") then
    local x = self:peek()
    malformed("Unexpected token: " .. tostring(x.raw or x.v))
  end
  if self.nparam ~= #self.params then
    validation("Number of parameters in request and statement don't match.")
  end
  return st
end

-- SET values: an operand, operand (+|-) operand, or a function.
function P:update_value()
  local t = self:peek()
  if t.t == "id" and self:peek(1).t == "op" and self:peek(1).v == "(" then
    local fname = t.v:lower()
    if fname == "list_append" or fname == "set_add" or fname == "set_delete"
        or fname == "if_not_exists" then
      self:next()
      self:next()
      local a = self:operand()
      self:expect("op", ",")
      local b = self:operand()
      self:expect("op", ")")
      return { fn = fname, a = a, b = b }
    end
  end
  local a = self:operand()
  if self:accept("op", "+") then return { arith = "+", a = a, b = self:operand() } end
  if self:accept("op", "-") then return { arith = "-", a = a, b = self:operand() } end
  return a
end

M.parse = function(src, params) return parser(src, params):statement() end

-- ------------------------------------------------------------ translation

-- An expression builder: DynamoDB expression text with #n and :v
-- placeholders, and their maps.
local function builder()
  return { names = {}, values = {}, nn = 0, nv = 0, by_name = {} }
end

local function b_name(b, n)
  local ph = b.by_name[n]
  if ph then return ph end
  b.nn = b.nn + 1
  ph = "#n" .. b.nn
  b.names[ph] = n
  b.by_name[n] = ph
  return ph
end

local function b_value(b, av)
  b.nv = b.nv + 1
  local ph = ":v" .. b.nv
  b.values[ph] = av
  return ph
end

local function b_path(b, p)
  local out = {}
  for _, x in ipairs(p) do
    if type(x) == "number" then
      out[#out] = out[#out] .. "[" .. x .. "]"
    else
      out[#out + 1] = b_name(b, x)
    end
  end
  return table_concat(out, ".")
end

local function b_operand(b, o)
  if o.path then return b_path(b, o.path) end
  if o.value then return b_value(b, o.value) end
  local args = {}
  for i, a in ipairs(o.args) do args[i] = b_operand(b, a) end
  return o.fn .. "(" .. table_concat(args, ", ") .. ")"
end

local function b_cond(b, c)
  local op = c.op
  if op == "and" or op == "or" then
    return "(" .. b_cond(b, c.a) .. ") " .. string_upper(op) .. " (" .. b_cond(b, c.b) .. ")"
  elseif op == "not" then
    return "NOT (" .. b_cond(b, c.a) .. ")"
  elseif op == "cmp" then
    return b_operand(b, c.a) .. " " .. c.cmp .. " " .. b_operand(b, c.b)
  elseif op == "between" then
    return b_operand(b, c.a) .. " BETWEEN " .. b_operand(b, c.lo) .. " AND " .. b_operand(b, c.hi)
  elseif op == "in" then
    local l = {}
    for i, x in ipairs(c.list) do l[i] = b_operand(b, x) end
    return b_operand(b, c.a) .. " IN (" .. table_concat(l, ", ") .. ")"
  elseif op == "missing" then
    return (c.neg and "attribute_exists(" or "attribute_not_exists(") .. b_operand(b, c.a) .. ")"
  elseif op == "isnull" then
    local t = b_value(b, { S = "NULL" })
    local s = "attribute_type(" .. b_operand(b, c.a) .. ", " .. t .. ")"
    return c.neg and ("NOT " .. s) or s
  elseif op == "fn" then
    local args = {}
    for i, a in ipairs(c.args) do args[i] = b_operand(b, a) end
    return c.name .. "(" .. table_concat(args, ", ") .. ")"
  end
  error("partiql: unknown condition node " .. tostring(op))
end

-- The top-level AND conjuncts of a condition.
local function conjuncts(c, out)
  out = out or {}
  if c == nil then return out end
  if c.op == "and" then
    conjuncts(c.a, out)
    conjuncts(c.b, out)
  else
    out[#out + 1] = c
  end
  return out
end

local function and_all(list)
  local c = nil
  for _, x in ipairs(list) do c = c and { op = "and", a = c, b = x } or x end
  return c
end

-- Is conjunct c "key = value" for the attribute `name`?  Returns the value.
local function key_equality(c, name)
  if c.op ~= "cmp" or c.cmp ~= "=" then return nil end
  local a, v = c.a, c.b
  if v.path then a, v = c.b, c.a end
  if a.path and #a.path == 1 and a.path[1] == name and v.value then return v.value end
  return nil
end

-- Is conjunct c a sort-key condition usable in a key condition?
local function key_range(c, name)
  local function is_key(o) return o.path and #o.path == 1 and o.path[1] == name end
  if c.op == "cmp" and c.cmp ~= "<>" then
    if is_key(c.a) and c.b.value then return true end
    if is_key(c.b) and c.a.value then return true end
  elseif c.op == "between" then
    return is_key(c.a) and c.lo.value ~= nil and c.hi.value ~= nil
  elseif c.op == "fn" and c.name == "begins_with" then
    return is_key(c.args[1]) and c.args[2] and c.args[2].value ~= nil
  end
  return false
end

-- The whole primary key from a WHERE (equalities on every key attribute),
-- with the conjuncts left; nil when the WHERE does not name it.
local function full_key(rec, where)
  local cs = conjuncts(where)
  local key, rest = {}, {}
  local want = { rec.keys.hash.name }
  if rec.keys.range then want[2] = rec.keys.range.name end
  local used = {}
  for i, c in ipairs(cs) do
    for _, n in ipairs(want) do
      if not key[n] then
        local v = key_equality(c, n)
        if v then
          key[n] = v
          used[i] = true
          break
        end
      end
    end
  end
  for _, n in ipairs(want) do if not key[n] then return nil end end
  for i, c in ipairs(cs) do if not used[i] then rest[#rest + 1] = c end end
  return key, rest
end

local function table_of(name)
  if name == "" then validation("Path component cannot be an empty string") end
  local t = tables.table_name(name)
  local rec = catalog.table(t)
  return t, rec
end

-- The value of a path in a Lua item.
local function get_path(item, p)
  local v = item
  for _, x in ipairs(p) do
    if type(v) ~= "table" then return nil end
    if type(x) == "number" then v = v[x + 1] else v = v[x] end
  end
  return v
end

-- ------------------------------------------------------------ SELECT

-- The top-level attribute names condition c reads, each passed to fn.
local function condition_names(c, fn)
  if type(c) ~= "table" then return end
  if c.path then
    if type(c.path[1]) == "string" then fn(c.path[1]) end
    return
  end
  for _, k in ipairs { "a", "b", "lo", "hi" } do condition_names(c[k], fn) end
  for _, k in ipairs { "args", "list" } do
    if type(c[k]) == "table" then
      for _, x in ipairs(c[k]) do condition_names(x, fn) end
    end
  end
end

-- Is conjunct c an IN on the key attribute `name`?
local function key_in(c, name)
  return c.op == "in" and c.a.path and #c.a.path == 1 and c.a.path[1] == name
end

-- A read of an index keyed on its partition key (= or IN, at the top
-- level) may filter only on attributes the index projects, as DynamoDB
-- rules; unkeyed, the read is a scan of the index and such a filter
-- simply matches nothing.
local function check_index_filters(rec, ix, keys, cs)
  if ix.projection.type == "ALL" then return end
  local hash, range = keys.hash.name, keys.range and keys.range.name
  local keyed = false
  for _, c in ipairs(cs) do
    if key_equality(c, hash) or key_in(c, hash) then keyed = true end
  end
  if not keyed then return end
  local projected = { [rec.keys.hash.name] = true, [hash] = true }
  if rec.keys.range then projected[rec.keys.range.name] = true end
  if range then projected[range] = true end
  for _, a in ipairs(ix.projection.attrs or {}) do projected[a] = true end
  local missing, seen = {}, {}
  for _, c in ipairs(cs) do
    if not (key_equality(c, hash) or key_in(c, hash) or (range and key_range(c, range))) then
      condition_names(c, function(n)
        if not projected[n] and not seen[n] then
          seen[n] = true
          missing[#missing + 1] = n
        end
      end)
    end
  end
  if #missing > 0 then
    validation("One or more parameter values were invalid: Secondary index %s does not project "
      .. "one or more filter attributes: [%s]", ix.name, table_concat(missing, ", "))
  end
end

local function select_request(st, req, rec)
  local b = builder()
  local r = { TableName = st.table, ConsistentRead = req.ConsistentRead,
    ReturnConsumedCapacity = req.ReturnConsumedCapacity, Limit = req.Limit }
  local keys = rec.keys
  local ix
  if st.index then
    if st.index == "" then validation("Path component cannot be an empty string") end
    ix = (rec.gsi or {})[st.index] or (rec.lsi or {})[st.index]
    if not ix then validation("The table does not have the specified index") end
    if ix.kind == "gsi" and req.ConsistentRead then
      validation("Strongly consistent read is not supported on Global Secondary Indexes")
    end
    r.IndexName = st.index
    keys = ix.kind == "lsi" and { hash = rec.keys.hash, range = ix.keys.range } or ix.keys
  end
  local cs = conjuncts(st.where)
  if ix then check_index_filters(rec, ix, keys, cs) end
  local pk_value, pk_at
  for i, c in ipairs(cs) do
    local v = key_equality(c, keys.hash.name)
    if v then
      pk_value, pk_at = v, i
      break
    end
  end
  local rest = {}
  if pk_value then
    local kc = { b_name(b, keys.hash.name) .. " = " .. b_value(b, pk_value) }
    local range_used = false
    for i, c in ipairs(cs) do
      if i ~= pk_at then
        if not range_used and keys.range and key_range(c, keys.range.name) then
          kc[#kc + 1] = b_cond(b, c)
          range_used = true
        else
          rest[#rest + 1] = c
        end
      end
    end
    r.KeyConditionExpression = table_concat(kc, " AND ")
  else
    rest = cs
  end
  local filter = and_all(rest)
  if filter then r.FilterExpression = b_cond(b, filter) end
  if st.order then
    if not pk_value or not keys.range or #st.order ~= 1 or st.order[1] ~= keys.range.name then
      validation("Must have the sort key in the ORDER BY clause and the partition key in the "
        .. "WHERE clause")
    end
    r.ScanIndexForward = not st.desc
  end
  if next(b.names) then r.ExpressionAttributeNames = b.names end
  if next(b.values) then r.ExpressionAttributeValues = b.values end
  return r, pk_value ~= nil, ix
end

-- A NextToken: the read's LastEvaluatedKey and the table or index it
-- walked, so that a token is not taken by a read of another index.
local function decode_token(tok, source)
  local ok, raw = pcall(ddbjson.base64_decode, tok)
  local t = ok and raw and json.decode(raw)
  if type(t) ~= "table" or type(t.k) ~= "table" or t.s ~= source then
    validation("Invalid NextToken")
  end
  return t.k
end

local function encode_token(lek, source)
  return ddbjson.base64_encode(json.encode({ k = lek, s = source }))
end

-- Project a result item (an AttributeValue map) on SELECT's paths: each
-- path's value under its last name.
local function project(av_item, paths)
  if not paths then return av_item end
  local item = values.item(av_item)
  local out = {}
  for _, p in ipairs(paths) do
    local v = get_path(item, p)
    if v ~= nil then
      local name = p[#p]
      if type(name) == "number" then name = p[#p - 1] end
      out[name] = v
    end
  end
  return values.encode_item(out)
end

local function run_select(st, req, ctx)
  local name, rec = table_of(st.table)
  st.table = name
  local r, is_query, ix = select_request(st, req, rec)
  local reach_back = false
  if ix and st.paths and ix.projection.type ~= "ALL" then
    local have = { [rec.keys.hash.name] = true, [ix.keys.hash.name] = true }
    if rec.keys.range then have[rec.keys.range.name] = true end
    if ix.keys.range then have[ix.keys.range.name] = true end
    for _, a in ipairs(ix.projection.attrs or {}) do have[a] = true end
    local missing = {}
    for _, p in ipairs(st.paths) do
      if not have[p[1]] then missing[#missing + 1] = p[1] end
    end
    if #missing > 0 then
      -- a local index reaches back to its table for what it does not
      -- project (it shares the table's partitions); a global one refuses
      if ix.kind == "lsi" then reach_back = true else
        validation("One or more parameter values were invalid: %s secondary index %s does not "
          .. "project [%s]", ix.kind == "gsi" and "Global" or "Local", ix.name,
          table_concat(missing, ", "))
      end
    end
  end
  local source = st.table .. (st.index and ("." .. st.index) or "")
  if req.NextToken then r.ExclusiveStartKey = decode_token(req.NextToken, source) end
  local res = (is_query and ops.Query or ops.Scan)(r, internal(ctx))
  local found = json.items(res.Items)
  if reach_back then
    -- the whole items from the table, charged on the table arm for every
    -- row the read walked (the filter runs after the fetch)
    local _, db = catalog.table(name)
    local units = 0
    for i, it in ipairs(found) do
      local key = values.key_of(rec, values.item(it))
      local whole = db:get_item(key)
      if whole then found[i] = values.encode_item(whole) end
      units = units + capacity.read_units(whole and size.item(whole) or 0, req.ConsistentRead)
    end
    local walked = (res.ScannedCount or #found) - #found
    units = units + walked * capacity.read_units(0, req.ConsistentRead)
    local cc = res.ConsumedCapacity
    if cc and units > 0 then
      cc.CapacityUnits = (cc.CapacityUnits or 0) + units
      if cc.Table or req.ReturnConsumedCapacity == "INDEXES" then
        cc.Table = { CapacityUnits = ((cc.Table or {}).CapacityUnits or 0) + units }
      end
    end
  end
  local items = {}
  for i, it in ipairs(found) do items[i] = project(it, st.paths) end
  local out = { Items = json.list(items) }
  if res.LastEvaluatedKey then
    out.NextToken = encode_token(res.LastEvaluatedKey, source)
    out.LastEvaluatedKey = res.LastEvaluatedKey
  end
  if res.ConsumedCapacity then out.ConsumedCapacity = res.ConsumedCapacity end
  return out
end

-- ------------------------------------------------------------ writes

local function write_request(st, req, rec)
  local b = builder()
  local r = { TableName = st.table, ReturnConsumedCapacity = req.ReturnConsumedCapacity,
    ReturnValuesOnConditionCheckFailure = req.ReturnValuesOnConditionCheckFailure }
  if st.kind == "insert" then
    local item = st.value.M
    for _, k in pairs { rec.keys.hash, rec.keys.range } do
      if item[k.name] == nil then
        validation("One or more parameter values were invalid: Missing the key %s in the item",
          k.name)
      end
    end
    r.Item = item
    r.ConditionExpression = "attribute_not_exists(" .. b_name(b, rec.keys.hash.name) .. ")"
  else
    local key, rest = full_key(rec, st.where)
    if not key then
      validation("Where clause does not contain a mandatory equality on all key attributes")
    end
    r.Key = key
    local conds = {}
    if st.kind == "update" or st.kind == "exists" then
      conds[1] = "attribute_exists(" .. b_name(b, rec.keys.hash.name) .. ")"
    end
    local extra = and_all(rest)
    if extra then conds[#conds + 1] = "(" .. b_cond(b, extra) .. ")" end
    if #conds > 0 then r.ConditionExpression = table_concat(conds, " AND ") end
    if st.kind == "update" then
      local sets, removes, adds, deletes = {}, {}, {}, {}
      for _, s in ipairs(st.sets) do
        local target = b_path(b, s.path)
        local v = s.value
        if v.fn == "set_add" then
          adds[#adds + 1] = target .. " " .. b_operand(b, v.b)
        elseif v.fn == "set_delete" then
          deletes[#deletes + 1] = target .. " " .. b_operand(b, v.b)
        elseif v.fn then
          sets[#sets + 1] = target .. " = " .. v.fn .. "(" .. b_operand(b, v.a) .. ", "
            .. b_operand(b, v.b) .. ")"
        elseif v.arith then
          sets[#sets + 1] = target .. " = " .. b_operand(b, v.a) .. " " .. v.arith .. " "
            .. b_operand(b, v.b)
        else
          sets[#sets + 1] = target .. " = " .. b_operand(b, v)
        end
      end
      for _, p in ipairs(st.removes) do removes[#removes + 1] = b_path(b, p) end
      local parts = {}
      if #sets > 0 then parts[#parts + 1] = "SET " .. table_concat(sets, ", ") end
      if #removes > 0 then parts[#parts + 1] = "REMOVE " .. table_concat(removes, ", ") end
      if #adds > 0 then parts[#parts + 1] = "ADD " .. table_concat(adds, ", ") end
      if #deletes > 0 then parts[#parts + 1] = "DELETE " .. table_concat(deletes, ", ") end
      r.UpdateExpression = table_concat(parts, " ")
      if st.returning then
        r.ReturnValues = ({ ["ALL NEW"] = "ALL_NEW", ["ALL OLD"] = "ALL_OLD",
          ["MODIFIED NEW"] = "UPDATED_NEW", ["MODIFIED OLD"] = "UPDATED_OLD" })[st.returning]
      end
    elseif st.kind == "delete" then
      if st.returning then
        if st.returning ~= "ALL OLD" then
          validation("Invalid returning clause: RETURNING %s *. Only RETURNING ALL OLD * is "
            .. "allowed "
            .. "in DELETE statements.", st.returning)
        end
        r.ReturnValues = "ALL_OLD"
      end
    end
  end
  if next(b.names) then r.ExpressionAttributeNames = b.names end
  if next(b.values) then r.ExpressionAttributeValues = b.values end
  return r
end

local OPNAME = { insert = "PutItem", update = "UpdateItem", delete = "DeleteItem" }

local function run_write(st, req, ctx)
  local name, rec = table_of(st.table)
  st.table = name
  if st.index then validation("This operation is not supported on an index") end
  local r = write_request(st, req, rec)
  local ok, res = pcall(ops[OPNAME[st.kind]], r, internal(ctx))
  if not ok then
    if errors.is(res) and res.name == "ConditionalCheckFailedException" and st.kind == "insert" then
      errors.raise("DuplicateItemException", "Duplicate primary key exists in table")
    end
    error(res, 0)
  end
  local out = { Items = json.EMPTY_ARRAY }
  if res.Attributes then out.Items = { res.Attributes } end
  if res.ConsumedCapacity then out.ConsumedCapacity = res.ConsumedCapacity end
  return out
end

-- ------------------------------------------------------------ operations

-- DynamoDB's type names of AttributeValues that have no ordering.
local UNORDERED = { BOOL = true, NULL = true, L = true, M = true, SS = true, NS = true,
  BS = true }

local function unordered_type(operand)
  local av = operand and operand.value
  if type(av) ~= "table" then return nil end
  for t in pairs(av) do
    if UNORDERED[t] then return t end
  end
  return nil
end

-- An ordering comparison (<, <=, >, >=, BETWEEN) with a value of a type
-- that has no order is refused when the statement is read, before its
-- table is looked up, as DynamoDB does.
local function check_orderings(c)
  if type(c) ~= "table" then return end
  local op = c.op
  if op == "cmp" and c.cmp ~= "=" and c.cmp ~= "<>" then
    local t = unordered_type(c.a) or unordered_type(c.b)
    if t then
      validation("Incorrect operand type for operator or function; operator or function: %s, "
        .. "operand type: %s", c.cmp, t)
    end
  elseif op == "between" then
    local t = unordered_type(c.a) or unordered_type(c.lo) or unordered_type(c.hi)
    if t then
      validation("Incorrect operand type for operator or function; operator or function: "
        .. "BETWEEN, operand type: %s", t)
    end
  elseif op == "and" or op == "or" then
    check_orderings(c.a)
    check_orderings(c.b)
  elseif op == "not" then
    check_orderings(c.a)
  end
end

local function parse_checked(statement, params)
  local st = M.parse(statement, params)
  check_orderings(st.where)
  return st
end

local function execute_statement(req, ctx)
  local st = parse_checked(req.Statement, req.Parameters)
  if st.kind == "select" then return run_select(st, req, ctx) end
  if st.kind == "exists" then malformed("EXISTS is only allowed in ExecuteTransaction") end
  return run_write(st, req, ctx)
end

-- Decoded Lua values of an AttributeValue map (for ddb_args).
local function decoded_values(t)
  local out = {}
  for k, av in pairs(t) do out[k] = values.value(av) end
  return out
end

local function error_entry(e)
  local code = e.name
  if code == "ConditionalCheckFailedException" then code = "ConditionalCheckFailed"
  elseif code == "DuplicateItemException" then code = "DuplicateItem"
  elseif code == "ValidationException" then code = "ValidationError"
  elseif code == "ResourceNotFoundException" then code = "ResourceNotFound"
  elseif code == "TransactionConflictException" then code = "TransactionConflict"
  elseif code == "ProvisionedThroughputExceededException" then
    code = "ProvisionedThroughputExceeded"
  end
  local out = { Code = code, Message = e.message }
  if e.extra and e.extra.Item then out.Item = e.extra.Item end
  return out
end

local function batch_execute(req, ctx)
  local responses = {}
  local kinds = {}
  local parsed = {}
  for i, s in ipairs(req.Statements) do
    local ok, st = pcall(parse_checked, s.Statement, s.Parameters)
    if ok then
      parsed[i] = st
      kinds[st.kind == "select" and "read" or "write"] = true
    else
      parsed[i] = st
    end
  end
  if kinds.read and kinds.write then
    validation("Batch can only contain either read or write statements")
  end
  local u = capacity.usage(req.ReturnConsumedCapacity)
  for i, s in ipairs(req.Statements) do
    local st = parsed[i]
    local ran -- the member's table, once the member ran (a failure then names it)
    local ok, res = pcall(function()
      if not (type(st) == "table" and st.kind) then error(st, 0) end
      if st.kind == "exists" then malformed("EXISTS is only allowed in ExecuteTransaction") end
      local name, rec = table_of(st.table)
      st.table = name
      if st.kind == "select" then
        local key, rest = full_key(rec, st.where)
        if st.index or not key then
          validation("Select statements within BatchExecuteStatement must specify the primary "
            .. "key in the where clause")
        end
        local b = builder()
        local r = { TableName = name, Key = key, ConsistentRead = s.ConsistentRead,
          ReturnConsumedCapacity = u and "TOTAL" or nil }
        local g = ops.GetItem(r, internal(ctx))
        if u and g.ConsumedCapacity then
          capacity.add(u, name, "read", g.ConsumedCapacity.CapacityUnits)
        end
        local item = g.Item
        local extra = and_all(rest)
        if item and extra then
          local cond_text = b_cond(b, extra)
          local args = require("dynafile").ddb_args(next(b.names) and b.names or nil,
            next(b.values) and decoded_values(b.values) or nil)
          local e = args and args:condition("filter", cond_text)
          if e and not e:eval(values.item(item)) then item = nil end
        end
        local entry = { TableName = name }
        if item then entry.Item = project(item, st.paths) end
        return entry
      end
      local r = write_request(st, { ReturnValuesOnConditionCheckFailure =
        s.ReturnValuesOnConditionCheckFailure }, rec)
      if u then r.ReturnConsumedCapacity = "TOTAL" end
      ran = name
      local wok, wres = pcall(ops[OPNAME[st.kind]], r, internal(ctx))
      if wok and u and wres.ConsumedCapacity then
        capacity.add(u, name, "write", wres.ConsumedCapacity.CapacityUnits)
      end
      if not wok then
        if errors.is(wres) and wres.name == "ConditionalCheckFailedException"
          and st.kind == "insert" then
          errors.raise("DuplicateItemException", "Duplicate primary key exists in table")
        end
        error(wres, 0)
      end
      local entry = { TableName = name }
      if wres.Attributes then entry.Item = wres.Attributes end
      return entry
    end)
    if ok then
      responses[i] = res
    elseif errors.is(res) then
      responses[i] = { Error = error_entry(res), TableName = ran }
      if res.status >= 500 then error(res, 0) end
    else
      error(res, 0)
    end
  end
  local out = { Responses = json.list(responses) }
  if u then out.ConsumedCapacity = capacity.report_list(u) end
  return out
end

local function execute_transaction(req, ctx)
  local reads, writes = {}, {}
  local items = {}
  for i, s in ipairs(req.TransactStatements) do
    local ok, st = pcall(parse_checked, s.Statement, s.Parameters)
    if not ok then
      if errors.is(st) and st.name == "ValidationException" then
        validation("Validation failed in TransactStatements[%d]: %s", i - 1, st.message)
      end
      error(st, 0)
    end
    if st.returning then
      validation("Validation failed in TransactStatements[%d]: RETURNING clause is not supported "
        .. "in ExecuteTransaction.", i - 1)
    end
    if st.index then
      validation("Validation failed in TransactStatements[%d]: Reads on indices are not supported "
        .. "within transactions.", i - 1)
    end
    local name, rec = table_of(st.table)
    st.table = name
    if st.kind == "select" then
      local key = full_key(rec, st.where)
      if not key then
        validation("Validation failed in TransactStatements[%d]: Select statements within "
          .. "ExecuteTransaction must specify the full primary key", i - 1)
      end
      reads[#reads + 1] = { st = st }
      items[i] = { Get = { TableName = name, Key = key } }
    else
      writes[#writes + 1] = st
      local r = write_request(st, { ReturnValuesOnConditionCheckFailure =
        s.ReturnValuesOnConditionCheckFailure }, rec)
      local part = { TableName = name, ConditionExpression = r.ConditionExpression,
        ExpressionAttributeNames = r.ExpressionAttributeNames,
        ExpressionAttributeValues = r.ExpressionAttributeValues,
        ReturnValuesOnConditionCheckFailure = s.ReturnValuesOnConditionCheckFailure }
      if st.kind == "insert" then
        part.Item = r.Item
        items[i] = { Put = part }
      elseif st.kind == "update" then
        part.Key, part.UpdateExpression = r.Key, r.UpdateExpression
        items[i] = { Update = part }
      elseif st.kind == "delete" then
        part.Key = r.Key
        items[i] = { Delete = part }
      else
        part.Key = r.Key
        items[i] = { ConditionCheck = part }
      end
    end
  end
  if #reads > 0 and #writes > 0 then
    validation("Transaction can only contain either read or write statements")
  end
  if #reads > 0 then
    local res = ops.TransactGetItems({ TransactItems = items,
      ReturnConsumedCapacity = req.ReturnConsumedCapacity }, ctx)
    local out = {}
    for i, r in ipairs(json.items(res.Responses)) do
      local st = reads[i].st
      if r.Item and st.paths then out[i] = { Item = project(r.Item, st.paths) } else out[i] = r end
    end
    return { Responses = json.list(out), ConsumedCapacity = res.ConsumedCapacity }
  end
  local ok, res = pcall(ops.TransactWriteItems, { TransactItems = items,
    ClientRequestToken = req.ClientRequestToken,
    ReturnConsumedCapacity = req.ReturnConsumedCapacity }, ctx)
  if not ok then
    if errors.is(res) and res.name == "TransactionCanceledException" and res.extra then
      -- an INSERT on an existing item is a DuplicateItem reason
      for i, reason in ipairs(res.extra.CancellationReasons or {}) do
        local w = items[i]
        if reason.Code == "ConditionalCheckFailed" and w and w.Put then
          reason.Code = "DuplicateItem"
          reason.Message = "Duplicate primary key exists in table"
        end
      end
      local tx = require "dynafile.serve.transact"
      res.message = tx.cancellation_message(res.extra.CancellationReasons)
    end
    error(res, 0)
  end
  return { ConsumedCapacity = res.ConsumedCapacity }
end

function M.register(all)
  ops = all.DynamoDB
  ops.ExecuteStatement = execute_statement
  ops.BatchExecuteStatement = batch_execute
  ops.ExecuteTransaction = execute_transaction
end

return M
