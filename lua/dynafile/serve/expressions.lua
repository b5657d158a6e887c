--- dynafile.serve.expressions: the expression parameters of a request.
--
-- One `prepare(req, op)` per request checks how the request mixes its
-- parameters (expressions with their ExpressionAttributeNames/Values, or
-- the legacy ones -- never both), compiles what it has, and gives the
-- operation uniform pieces, whichever form the request used:
--
--   p.condition   function(old_or_nil) -> boolean   (ConditionExpression,
--                 Expected)
--   p.filter      function(item) -> boolean         (FilterExpression,
--                 QueryFilter, ScanFilter)
--   p.project     function(item) -> item            (ProjectionExpression,
--                 AttributesToGet)
--   p.update      function(old_or_nil, key) -> new, changed names
--                 (UpdateExpression, AttributeUpdates)
--   p.key_condition(keys) -> {pk, cond, lo, hi}      (KeyConditionExpression,
--                 KeyConditions)
--
-- DynamoDB expressions are compiled by dynafile's DynamoDB expression
-- engine (dynafile.ddb_args: the placeholders of one request, checked
-- for use across all its expressions); legacy parameters by legacy.lua.
--
-- Invariant: every check of the parameters happens in `prepare`, before
-- the table is read, in DynamoDB's order; the pieces only evaluate.
-- @module dynafile.serve.expressions

local dynafile = require "dynafile"
local errors = require "dynafile.serve.errors"
local values = require "dynafile.serve.values"
local legacy = require "dynafile.serve.legacy"

local pairs, ipairs, pcall, error, type, setmetatable =
  pairs, ipairs, pcall, error, type, setmetatable
local table_concat = table.concat

local M = {}

local validation = errors.validation

-- Per operation: its expression parameters (in DynamoDB's order for
-- messages), the ones that take values, and the legacy parameters.
local OPS = {
  GetItem = { expr = { "ProjectionExpression" }, legacy = { "AttributesToGet" } },
  PutItem = { expr = { "ConditionExpression" }, legacy = { "Expected", "ConditionalOperator" } },
  DeleteItem = { expr = { "ConditionExpression" }, legacy = { "Expected", "ConditionalOperator" } },
  UpdateItem = { expr = { "UpdateExpression", "ConditionExpression" },
    legacy = { "AttributeUpdates", "Expected", "ConditionalOperator" } },
  Query = { expr = { "KeyConditionExpression", "FilterExpression", "ProjectionExpression" },
    legacy = { "KeyConditions", "QueryFilter", "AttributesToGet", "ConditionalOperator" } },
  Scan = { expr = { "FilterExpression", "ProjectionExpression" },
    legacy = { "ScanFilter", "AttributesToGet", "ConditionalOperator" } },
  BatchGet = { expr = { "ProjectionExpression" }, legacy = { "AttributesToGet" } },
  TransactGet = { expr = { "ProjectionExpression" }, legacy = {} },
  TransactPut = { expr = { "ConditionExpression" }, legacy = {} },
  TransactDelete = { expr = { "ConditionExpression" }, legacy = {} },
  TransactCheck = { expr = { "ConditionExpression" }, legacy = {} },
  TransactUpdate = { expr = { "UpdateExpression", "ConditionExpression" }, legacy = {} },
}

local KIND = {
  ConditionExpression = "condition",
  FilterExpression = "filter",
  KeyConditionExpression = "key_condition",
}

local function engine()
  local f = dynafile.ddb_args
  if not f then
    errors.raise("InternalServerError",
      "DynamoDB expressions need dynafile's expression engine, which this build lacks")
  end
  return f
end

local function check(v, msg)
  if v == nil then validation("%s", msg) end
  return v
end

local function decoded_values(t)
  if t == nil then return nil end
  local out = {}
  for k, av in pairs(t) do
    local ok, v = pcall(values.value, av)
    if not ok then
      if errors.is(v) then
        validation("ExpressionAttributeValues contains invalid value: %s for key %s", v.message, k)
      end
      error(v, 0)
    end
    out[k] = v
  end
  return out
end

local CLAUSES = { SET = true, REMOVE = true, ADD = true, DELETE = true }

--- The top-level attribute names an UpdateExpression writes (its SET,
-- REMOVE, ADD and DELETE targets, #names resolved), for ReturnValues
-- UPDATED_OLD/UPDATED_NEW and the check that no key attribute changes;
-- and the weight DynamoDB's UpdateItem gives its actions against the 400
-- KB limit: 3, plus 19 per SET or ADD action (20 when the SET's path
-- goes through a list index), plus 2 per REMOVE or DELETE action.  The
-- expression has already compiled, so its syntax is right.
-- @treturn table the names
-- @treturn number the actions' weight
function M.update_targets(text, names)
  local toks = {}
  local i, n = 1, #text
  while i <= n do
    local c = text:sub(i, i)
    if c:match("%s") then
      i = i + 1
    elseif c:match("[#:%w_]") then
      local w = text:match("^[#:]?[%w_]+", i)
      toks[#toks + 1] = w
      i = i + #w
    else
      toks[#toks + 1] = c
      i = i + 1
    end
  end
  local out, seen = {}, {}
  local clause, depth, want_target = nil, 0, false
  local weight = 3
  -- in a SET target's path, until its "=": a list index there weighs one
  -- byte more
  local in_set_path, indexed = false, false
  local function action()
    weight = weight + ((clause == "SET" or clause == "ADD") and 19 or 2)
    in_set_path, indexed = clause == "SET", false
  end
  for _, t in ipairs(toks) do
    local up = t:upper()
    if in_set_path and t == "[" and not indexed then
      weight, indexed = weight + 1, true
    elseif in_set_path and t == "=" then
      in_set_path = false
    end
    if depth == 0 and CLAUSES[up] then
      clause, want_target = up, true
      action()
    elseif t == "(" then
      depth = depth + 1
    elseif t == ")" then
      depth = depth - 1
    elseif depth == 0 and t == "," and clause then
      want_target = true
      action()
    elseif want_target then
      local name = t
      if name:sub(1, 1) == "#" then name = names and names[name] end
      if name and not seen[name] then
        seen[name] = true
        out[#out + 1] = name
      end
      want_target = false
    end
  end
  return out, weight
end

-- DynamoDB words its key-schema complaints about a KeyConditionExpression
-- without the "Invalid KeyConditionExpression: " its parse errors carry.
local UNPREFIXED = { "Query condition missed key schema element",
  "Query key condition not supported",
  "KeyConditionExpressions must only contain one condition per key",
  "KeyConditionExpressions cannot have conditions on nested attributes",
  "Invalid operator used in KeyConditionExpression", "Invalid condition in KeyConditionExpression",
  "KeyConditionExpressions cannot contain nested operations",
  "Conditions can be of length 1 or 2 only" }
function M.key_condition_message(msg)
  local rest = msg:match("^Invalid KeyConditionExpression: (.*)$")
  if rest then
    for _, phrase in ipairs(UNPREFIXED) do
      if rest:sub(1, #phrase) == phrase then return rest end
    end
  end
  return msg
end

--- Check and compile the expression (or legacy) parameters of a request.
-- @tparam table req the request (or the part of it that holds them: a
--   BatchGetItem table entry, a transaction action)
-- @tparam string op a key of OPS
-- @treturn table the pieces described at the top (absent ones nil)
-- What prepare returns for a request with no expression or legacy
-- parameter at all (no piece; never changed by the callers).
local NOTHING = setmetatable({}, { __newindex = function()
  error("expressions.prepare: the empty plan is shared", 2)
end })

function M.prepare(req, op)
  local spec = OPS[op]
  if req.ExpressionAttributeNames == nil and req.ExpressionAttributeValues == nil then
    -- the common plain request (a GetItem or PutItem by key): nothing to do
    local any = false
    local list = spec.expr
    for i = 1, #list do if req[list[i]] ~= nil then any = true break end end
    if not any then
      list = spec.legacy
      for i = 1, #list do if req[list[i]] ~= nil then any = true break end end
    end
    if not any then return NOTHING end
  end
  local used_expr, used_legacy = {}, {}
  for _, p in ipairs(spec.expr) do if req[p] ~= nil then used_expr[#used_expr + 1] = p end end
  for _, p in ipairs(spec.legacy) do if req[p] ~= nil then used_legacy[#used_legacy + 1] = p end end
  if #used_expr > 0 and #used_legacy > 0 then
    validation("Can not use both expression and non-expression parameters in the same request: "
      .. "Non-expression parameters: {%s} Expression parameters: {%s}",
      table_concat(used_legacy, ", "), table_concat(used_expr, ", "))
  end
  local names, vals = req.ExpressionAttributeNames, req.ExpressionAttributeValues
  if names ~= nil and #used_expr == 0 then
    validation("ExpressionAttributeNames can only be specified when using expressions")
  end
  if vals ~= nil then
    local takes = {}
    for _, p in ipairs(spec.expr) do
      if p ~= "ProjectionExpression" then takes[#takes + 1] = p end
    end
    local any = false
    for _, p in ipairs(takes) do if req[p] ~= nil then any = true end end
    if not any then
      validation("ExpressionAttributeValues can only be specified when using expressions: %s %s "
        .. "null",
        table_concat(takes, " and "), #takes > 1 and "are" or "is")
    end
  end
  local p = {}
  if #used_legacy > 0 then
    if req.Expected then p.condition = legacy.expected(req.Expected, req.ConditionalOperator) end
    local f = req.QueryFilter or req.ScanFilter
    if f then p.filter = legacy.filter(f, req.ConditionalOperator) end
    if req.AttributesToGet then
      p.project, p.attributes = legacy.attributes_to_get(req.AttributesToGet)
    end
    if req.AttributeUpdates then
      local updates = req.AttributeUpdates
      p.update = function(old, key, rec)
        return legacy.attribute_updates(rec, updates)(old, key)
      end
      p.check_update = function(rec) legacy.attribute_updates(rec, updates) end
    end
    if req.KeyConditions then
      local kc = req.KeyConditions
      p.key_condition = function(keys) return legacy.key_conditions(kc, keys) end
    end
    return p
  end
  if #used_expr == 0 then return p end
  local args = check(engine()(names, decoded_values(vals)))
  for _, name in ipairs(used_expr) do
    local text = req[name]
    if name == "ProjectionExpression" then
      local proj = check(args:projection(text))
      p.project = function(item) return proj:apply(item) end
    elseif name == "UpdateExpression" then
      local u = check(args:update(text))
      p.update_expr = u
      local targets, weight = M.update_targets(text, names)
      p.update_weight = weight
      if u.paths then
        local list = u:paths()
        local out = {}
        for i, x in ipairs(list) do out[i] = type(x) == "table" and x[1] or x end
        p.targets = out
      else
        p.targets = targets
      end
    elseif name == "KeyConditionExpression" then
      p.key_condition = function(keys)
        local kc, msg = args:key_condition(text, keys.hash.name, keys.range and keys.range.name)
        if not kc then validation("%s", M.key_condition_message(msg)) end
        return kc
      end
    else
      local e = check(args:condition(KIND[name], text))
      local f = function(item) return e:eval(item) end
      if name == "FilterExpression" then p.filter = f else p.condition = f end
    end
  end
  -- with a key condition, Query compiles it against the key schema and
  -- then calls finish; else the unused placeholders are reported now
  p.finish = function() check(args:check_unused()) end
  if not req.KeyConditionExpression then p.finish() end
  p.args = args
  return p
end

return M
