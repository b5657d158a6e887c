--- dynafile.expr: DynamoDB expressions in Lua.
--
-- `dynafile.expr(text, names, values)` makes an expression object: the
-- text of a DynamoDB expression with its ExpressionAttributeNames (`#n` ->
-- attribute name) and ExpressionAttributeValues (`:v` -> Lua value).  It
-- is accepted wherever a filter, a condition, a key condition, an update
-- or a projection is, and is compiled by the C core (src/ddbexpr.c) the
-- first time it is used in each role, then kept compiled.  Invariant: an
-- object never changes after it is made; its compiled forms are caches.
--
-- `dynafile.expressions{...}` compiles the expressions of one DynamoDB
-- request against one set of names and values, with DynamoDB's check that
-- every name and value is used by some expression.
-- @module dynafile.expr

local core = require "dynafile.core"

local type, pairs, ipairs, setmetatable, getmetatable, error =
  type, pairs, ipairs, setmetatable, getmetatable, error
local string_format = string.format

local M = {}

local Expr = {}
Expr.__index = Expr
Expr.__name = "dynafile.expr"

function Expr.__tostring(x)
  return "dynafile.expr(" .. x.text .. ")"
end

-- The roles an expression can play, and how each is compiled.
local ROLES = {
  condition = true, filter = true, key_condition = true, projection = true, update = true,
}

local function compile_with(args, role, text)
  if role == "projection" then return args:projection(text) end
  if role == "update" then return args:update(text) end
  return args:condition(role, text)
end

--- Make an expression object.
-- @tparam string text the expression, in DynamoDB's syntax
-- @tparam[opt] table names `{["#n"] = "attribute name", ...}`
-- @tparam[opt] table values `{[":v"] = value, ...}` (any storable value)
-- @treturn table the expression object, with fields `text`, `names`, `values`
-- @raise when an argument has the wrong type
function M.new(text, names, values)
  if type(text) ~= "string" then
    error(string_format("dynafile.expr: text must be a string, got %s", type(text)), 2)
  end
  if names ~= nil and type(names) ~= "table" then
    error(string_format("dynafile.expr: names must be a table or nil, got %s", type(names)), 2)
  end
  if values ~= nil and type(values) ~= "table" then
    error(string_format("dynafile.expr: values must be a table or nil, got %s", type(values)), 2)
  end
  return setmetatable({ text = text, names = names, values = values, _compiled = {} }, Expr)
end

--- Is x an expression object?
-- @param x any value
-- @treturn boolean
-- @raise never
function M.is(x)
  return getmetatable(x) == Expr
end

--- The compiled form of x in `role`.
-- @tparam table x an expression object
-- @tparam string role "condition", "filter", "key_condition",
--   "projection" or "update"
-- @return the compiled object, or nil, DynamoDB's message
-- @raise never (errors are returned)
function M.compiled(x, role)
  local c = x._compiled[role]
  if c then return c end
  local args, msg = core.ddb_args(x.names, x.values)
  if not args then return nil, msg end
  c, msg = compile_with(args, role, x.text)
  if not c then return nil, msg end
  local ok
  ok, msg = args:check_unused()
  if not ok then return nil, msg end
  x._compiled[role] = c
  return c
end

--- A key condition decomposed for a query on a table or index whose key
-- attributes are `pk` and `sk` (nil: no sort key): a table `{pk = value,
-- cond = "eq"|"lt"|"le"|"gt"|"ge"|"between"|"begins_with", lo = v, hi = v}`
-- (cond and lo absent without a sort-key condition).
-- @tparam table x an expression object
-- @tparam string pk the partition-key attribute
-- @tparam[opt] string sk the sort-key attribute
-- @return the table, or nil, DynamoDB's message
-- @raise never (errors are returned)
function M.key_condition(x, pk, sk)
  local key = "key:" .. pk .. "\0" .. (sk or "")
  local c = x._compiled[key]
  if c then return c end
  local args, msg = core.ddb_args(x.names, x.values)
  if not args then return nil, msg end
  c, msg = args:key_condition(x.text, pk, sk)
  if not c then return nil, msg end
  local ok
  ok, msg = args:check_unused()
  if not ok then return nil, msg end
  x._compiled[key] = c
  return c
end

--- Compile the expressions of one DynamoDB request together.
-- @tparam table t `names`, `values`, and any of `condition`, `filter`,
--   `key_condition`, `projection`, `update` (expression texts)
-- @treturn table|nil a table of expression objects by role, each compiled
-- @treturn string DynamoDB's message when an expression is invalid or a
--   name or value is used by none of them
-- @treturn string "ValidationError"
-- @raise when an argument has the wrong type
function M.request(t)
  if type(t) ~= "table" then
    error(string_format("dynafile.expressions: argument must be a table, got %s", type(t)), 2)
  end
  local names, values = t.names, t.values
  for k, v in pairs(t) do
    if k ~= "names" and k ~= "values" then
      if not ROLES[k] then
        error(string_format("dynafile.expressions: unknown field '%s'", k), 2)
      end
      if type(v) ~= "string" then
        error(string_format("dynafile.expressions: %s must be a string, got %s", k, type(v)), 2)
      end
    end
  end
  local args, msg, code = core.ddb_args(names, values)
  if not args then return nil, msg, code end
  local out = {}
  -- DynamoDB's order of validation
  for _, role in ipairs { "update", "condition", "key_condition", "filter", "projection" } do
    local text = t[role]
    if text then
      local c
      c, msg, code = compile_with(args, role, text)
      if not c then return nil, msg, code end
      local x = M.new(text, names, values)
      x._compiled[role] = c
      out[role] = x
    end
  end
  local ok
  ok, msg, code = args:check_unused()
  if not ok then return nil, msg, code end
  return out
end

return M
