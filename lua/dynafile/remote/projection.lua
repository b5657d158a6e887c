--- dynafile.remote.projection: projections on the DynamoDB backend.
--
-- A projection option (`projection =` on get_item, batch_get_item, query,
-- scan and the page calls) is a list of paths in dynafile's path syntax or
-- a `dynafile.expr` ProjectionExpression.  It is compiled by the core, as a
-- local database compiles it, so a malformed one fails with the same
-- message.  The server is sent a ProjectionExpression that covers it --
-- each path cut before its first list position, together with the
-- top-level attributes the client needs itself (the keys to page and to
-- look items up, the TTL attribute, the attributes of a filter evaluated
-- here) -- and the client applies the compiled projection to what comes
-- back.
--
-- Invariant: the item a call returns is the core's projection of the
-- stored item, exactly as a local database returns it; the server's own
-- projection only decides which attributes travel (a covering path keeps
-- the whole value under it, so projecting it again changes nothing).
-- @module dynafile.remote.projection

local update = require "dynafile.update"
local ddb_expr = require "dynafile.expr"

local types = require "dynafile.types"

local type, ipairs, pairs, getmetatable, setmetatable =
  type, ipairs, pairs, getmetatable, setmetatable
local types_type = types.type
local table_sort, table_concat = table.sort, table.concat

local M = {}

-- The covering paths (lists of names) of a ProjectionExpression's text,
-- whose placeholders are resolved through `names`.  The text has been
-- compiled already: only its shape is read here.
local function expression_paths(text, names)
  local out = {}
  for part in (text .. ","):gmatch("([^,]*),") do
    local segs = {}
    local rest = part:match("^%s*(.-)%s*$")
    -- names up to the first list position: [%w_#]+ separated by dots
    for seg in (rest:match("^[^%[]*") or ""):gmatch("[^%.%s]+") do
      if seg:sub(1, 1) == "#" then seg = names and names[seg] or seg end
      segs[#segs + 1] = seg
    end
    if #segs > 0 then out[#out + 1] = segs end
  end
  return out
end

-- The covering paths of a list of dynafile paths.
local function list_paths(fn, list)
  local out = {}
  for i = 1, #list do
    local segs = {}
    for _, s in ipairs(update.parse_path(fn, list[i])) do
      if type(s) ~= "string" then break end
      segs[#segs + 1] = s
    end
    out[#out + 1] = segs
  end
  return out
end

--- Compile a projection option.
-- @tparam string fn the calling function's name, for messages
-- @param pj the option: a list of paths, a `dynafile.expr`, or a
--   projection compiled already by `dynafile.ddb_args`
-- @treturn table|nil the projection: `{compiled = core projection, paths
--   = covering paths or nil (a compiled one: the server is asked for
--   whole items)}`
-- @treturn string the message when it does not compile
-- @raise on an option of the wrong type, as a local database raises
function M.compile(fn, pj)
  local compiled, msg = require("dynafile.handle").projection(fn, pj)
  if not compiled then return nil, msg end
  local paths
  if ddb_expr.is(pj) then
    paths = expression_paths(pj.text, pj.names)
  elseif type(pj) == "table" and getmetatable(pj) == nil then
    paths = list_paths(fn, pj)
  end
  return { compiled = compiled, paths = paths }
end

--- The ProjectionExpression to send: the projection's covering paths and
-- the top-level attributes `extra` (a set of names), overlapping paths
-- merged into the shorter one (DynamoDB refuses overlaps); nil when the
-- server must send whole items.
-- @tparam table p a compiled projection
-- @tparam table b the request's `names` builder (dynafile.remote.expr)
-- @tparam[opt] table extra `{name = true}`
-- @treturn string|nil the expression
-- @raise never
function M.expression(p, b, extra)
  if not p.paths then return nil end
  local list = {}
  for _, segs in ipairs(p.paths) do list[#list + 1] = segs end
  for name in pairs(extra or {}) do list[#list + 1] = { name } end
  -- sorted by their names joined, a path's extensions follow it
  local keyed = {}
  for i, segs in ipairs(list) do
    keyed[i] = { key = table_concat(segs, "\0") .. "\0", segs = segs }
  end
  table_sort(keyed, function(x, y) return x.key < y.key end)
  local parts, last = {}, nil
  for _, k in ipairs(keyed) do
    if not (last and k.key:sub(1, #last) == last) then
      parts[#parts + 1] = b:path(k.segs)
      last = k.key
    end
  end
  return table_concat(parts, ", ")
end

-- Values the core's projection must not see: the core encodes the item
-- to project it, and its encoder does not hold every DynamoDB value the
-- backend reads (binary, sets, numbers that are not Lua numbers: decimals,
-- int64 under LuaJIT).  A projection only selects, so each such value is
-- replaced by a token string before and put back after.
local TOKEN = "\0dynafile:projected:"

local function special(v)
  local t = types_type(v)
  if t == "B" or t == "SS" or t == "NS" or t == "BS" then return true end
  return t == "N" and type(v) ~= "number"
end

local function has_special(v)
  if special(v) then return true end
  if type(v) == "table" then
    for _, x in pairs(v) do
      if has_special(x) then return true end
    end
  end
  return false
end

local function shield(v, vault)
  if special(v) then
    vault.n = vault.n + 1
    local tok = vault.prefix .. vault.n
    vault[tok] = v
    return tok
  end
  if type(v) == "table" then
    local out = {}
    for k, x in pairs(v) do out[k] = shield(x, vault) end
    return setmetatable(out, getmetatable(v)) -- (an empty list keeps its mark)
  end
  return v
end

local function unshield(v, vault)
  if type(v) == "string" then
    local x = vault[v]
    if x ~= nil and v ~= "n" and v ~= "prefix" then return x end
    return v
  end
  if type(v) == "table" then
    for k, x in pairs(v) do v[k] = unshield(x, vault) end
  end
  return v
end

--- Project an item as a local database does.
-- @tparam table p a compiled projection
-- @tparam table item the item (or the server's covering part of it)
-- @treturn table the projected item
-- @raise on an item the core cannot encode
function M.apply(p, item)
  if not has_special(item) then return p.compiled:apply(item) end
  -- (the vault's address in its tokens: no stored string can be one)
  local vault = { n = 0 }
  vault.prefix = TOKEN .. tostring(vault) .. ":"
  return unshield(p.compiled:apply(shield(item, vault)), vault)
end

return M
