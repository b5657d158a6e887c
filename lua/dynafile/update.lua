--- dynafile.update: what update_item does to an item.
--
-- Two forms of changes.  A table
--   `{set = {path = value}, remove = {path, ...}, add = {path = n_or_list},
--     delete = {path = {v, ...}}}`
-- is checked and compiled once, before any transaction starts, into an
-- update program of the C core (`compile`, which raises on misuse), which
-- `run` applies inside the write transaction to the stored bytes, so
-- attributes the changes do not name keep their exact bytes.  A DynamoDB
-- UpdateExpression (a `dynafile.expr`) compiles into the same kind of
-- program.  A function `function(old_or_nil) return new end` is run by
-- `run` with the write transaction held.
--
-- Paths are `a.b[0].c`: attribute names separated by dots, 0-based list
-- positions in brackets, and names in backticks (`` `a.b` `` is one
-- attribute), as in filter strings.  Every path of a table
-- of changes refers to the item as it was before the update, like
-- DynamoDB's update expressions; so two paths where one is the other or
-- lies inside it are refused ("overlap"), and list positions removed from
-- one list are removed from the highest down, whatever order they are
-- given in.
--
-- Invariants: the key attributes of the item never change; an item is
-- either fully updated or `apply` reports why not and the caller discards
-- it (it may be half-changed: callers pass a table they own).
-- @module dynafile.update

local core = require "dynafile.core"
local errors = require "dynafile.errors"
local expr = require "dynafile.expr"

local type, pairs, ipairs = type, pairs, ipairs
local tostring = tostring
local getmetatable, setmetatable = getmetatable, setmetatable
local string_format, table_sort, table_concat = string.format, table.sort, table.concat

local array_mt = core.array_mt

local M = {}

local CHANGE_KINDS = { set = true, remove = true, add = true, delete = true }

local raise = errors.fail

--- Split a path into segments: strings for names, 1-based integers for
-- list positions, by the core's one path grammar (the one of filters and
-- conditions: `a.b[0]`, `` `any name` ``).
-- @raise on a malformed path
function M.parse_path(fn, path)
  if type(path) ~= "string" then
    raise(fn, "path must be a string, got %s", type(path))
  end
  local segs, msg = core.parse_path(path)
  if not segs then raise(fn, "path '%s': %s", path, msg) end
  return segs
end

-- The canonical spelling of the first m segments ("a.b[2]").
local function spell(segs, m)
  local parts = {}
  for i = 1, m do
    local s = segs[i]
    if type(s) == "number" then
      parts[#parts + 1] = "[" .. (s - 1) .. "]"
    else
      if s == "" or s:find("[%.%[%]`\\]") then
        s = "`" .. s:gsub("[`\\]", "\\%0") .. "`"
      end
      parts[#parts + 1] = (i > 1 and "." or "") .. s
    end
  end
  return table_concat(parts)
end

-- Order of paths: segment by segment, names by bytes, positions by number,
-- names before positions, a prefix first.  Gives sets a fixed order, so
-- appends past the end of one list land in position order.
local function path_less(a, b)
  local sa, sb = a.segs, b.segs
  for i = 1, #sa < #sb and #sa or #sb do
    local x, y = sa[i], sb[i]
    if x ~= y then
      local tx, ty = type(x), type(y)
      if tx ~= ty then return tx == "string" end
      return x < y
    end
  end
  return #sa < #sb
end

local function is_key_attr(db, name)
  return name == db._pk or (db._sk ~= nil and name == db._sk)
end

local function is_list_value(v)
  if type(v) ~= "table" then return false end
  if getmetatable(v) == array_mt then return true end
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  return n == #v
end

-- Parsed paths, kept so that an update repeated many times parses its
-- paths once: path -> segments, with .full (the canonical spelling) and
-- .prefixes (the spellings of its proper prefixes).  Segments are never
-- changed once made.  Emptied when it grows past PARSED_MAX entries.
local parsed, n_parsed = {}, 0
local PARSED_MAX = 4096

local function parse(fn, path)
  local segs = parsed[path]
  if segs then return segs end
  segs = M.parse_path(fn, path)
  segs.full = spell(segs, #segs)
  local prefixes = {}
  for m = 1, #segs - 1 do prefixes[m] = spell(segs, m) end
  segs.prefixes = prefixes
  if n_parsed >= PARSED_MAX then parsed, n_parsed = {}, 0 end
  parsed[path] = segs
  n_parsed = n_parsed + 1
  return segs
end

-- An operation of a plan: kind, segs, path (canonical), value, and
-- `where` ("changes.set[\"a.b\"]", for messages), made when first read.
local op_mt = {
  __index = function(op, k)
    if k ~= "where" then return nil end
    local w
    if op.kind == "remove" then
      w = string_format("changes.remove[%d]", op.pos)
    else
      w = string_format("changes.%s[%q]", op.kind, op.raw)
    end
    op.where = w
    return w
  end,
}

local KINDS_WITH_VALUES = { "set", "add", "delete" }
local ALL_KINDS = { "set", "add", "delete", "remove" }

--- Compile `changes` into a plan, before any transaction starts.
-- A function is its own plan.
-- @raise on misuse: unknown kinds, malformed paths, a key attribute in a
--   path, overlapping paths, values of the wrong type
function M.compile(db, fn, changes)
  local tc = type(changes)
  if tc == "function" then return changes end
  if core.kind(changes) == "update" then return { c = changes } end
  if expr.is(changes) then
    local c, msg = expr.compiled(changes, "update")
    if not c then return nil, string_format("dynafile.%s: %s", fn, msg) end
    return { c = c }
  end
  if tc ~= "table" then
    raise(fn, "changes must be a table or a function, got %s", tc)
  end
  local plan = { set = {}, remove = {}, add = {}, delete = {} }
  local seen = {} -- canonical path -> its op
  local all = {}
  local function take(kind, op)
    local segs = parse(fn, op.raw)
    if is_key_attr(db, segs[1]) then
      raise(fn, "%s: cannot change key attribute %s (it is part of the key)", op.where, segs[1])
    end
    local full = segs.full
    local other = seen[full]
    if other then
      raise(fn, "%s and %s: the same path '%s' twice", other.where, op.where, full)
    end
    op.segs, op.path = segs, full
    seen[full] = op
    local list = plan[kind]
    list[#list + 1] = op
    all[#all + 1] = op
  end
  for kind, v in pairs(changes) do
    if not CHANGE_KINDS[kind] then
      raise(fn, "changes: unknown kind '%s' (set, remove, add, delete)", tostring(kind))
    end
    if type(v) ~= "table" then raise(fn, "changes.%s must be a table", kind) end
  end
  local remove = changes.remove
  if remove then
    local n = 0
    for _ in pairs(remove) do n = n + 1 end
    if n ~= #remove then raise(fn, "changes.remove must be a list of paths") end
    for i = 1, n do
      take("remove", setmetatable({ kind = "remove", pos = i, raw = remove[i] }, op_mt))
    end
  end
  for _, kind in ipairs(KINDS_WITH_VALUES) do
    local t = changes[kind]
    if t then
      for p, val in pairs(t) do
        if type(p) ~= "string" then raise(fn, "changes.%s: paths must be strings", kind) end
        local op = setmetatable({ kind = kind, raw = p, value = val }, op_mt)
        if kind == "add" and type(val) ~= "number" and not is_list_value(val) then
          raise(fn, "%s must be a number or a list, got %s", op.where, type(val))
        end
        if kind == "delete" and not is_list_value(val) then
          raise(fn, "%s must be a list of values to remove", op.where)
        end
        take(kind, op)
      end
    end
  end
  -- no path may be another's prefix: every path refers to the old item
  for i = 1, #all do
    local op = all[i]
    local prefixes = op.segs.prefixes
    for m = 1, #prefixes do
      local other = seen[prefixes[m]]
      if other then
        raise(fn, "%s and %s: paths overlap ('%s' lies inside '%s')", other.where,
          op.where, op.path, prefixes[m])
      end
    end
  end
  for _, kind in ipairs(KINDS_WITH_VALUES) do
    local list = plan[kind]
    if #list > 1 then table_sort(list, path_less) end
  end
  local c = core.update_new()
  for _, kind in ipairs(ALL_KINDS) do
    for _, op in ipairs(plan[kind]) do
      local ok, msg = c:add(kind, op.raw, op.value, op.where)
      if not ok then raise(fn, "%s", msg) end
    end
  end
  plan.c = c
  return plan
end

--- A deep copy of an item (tables copied with their metatables: list
-- marks, sets, binary values and decimals keep their type).
function M.copy(v)
  if type(v) ~= "table" then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = M.copy(x) end
  -- lists keep array_mt; sets, binary values and decimals their type
  local mt = getmetatable(v)
  if mt then setmetatable(t, mt) end
  return t
end

--- Apply a plan to the Lua item `old` (nil when the item is missing) and
-- return the new item.  A function plan receives `old`; key attributes it
-- leaves out are filled in from `key`.  A table or DynamoDB plan runs in
-- C on the item's encoding (for items that do not come from the local
-- store, such as the DynamoDB backend's).
-- @return the new item, or nil, message when the changes do not fit
-- @raise what the update function raises; when it returns no table or
--   changes a key attribute
function M.apply(db, fn, key, old, plan)
  local pk, sk = db._pk, db._sk
  if type(plan) ~= "function" then
    local new, msg, code, misuse = core.apply_update(plan.c, old, key, pk, sk)
    if new then return new end
    if code == "ValidationError" and not misuse then
      return nil, string_format("dynafile.%s: %s", fn, msg)
    end
    return errors.failed(fn, msg, code, misuse)
  end
  local new = plan(old)
  if type(new) ~= "table" then
    raise(fn, "the update function must return the new item (a table), got %s", type(new))
  end
  for _, name in ipairs { pk, sk or nil } do
    if new[name] == nil then
      new[name] = key[name]
    elseif new[name] ~= key[name] then
      raise(fn, "the update function may not change key attribute %s (%s became %s)", name,
        tostring(key[name]), tostring(new[name]))
    end
  end
  return new
end

--- Apply a compiled plan inside the write transaction `txn` and write the
-- new item.  `old` is the current item as Lua read it (nil when missing);
-- table and DynamoDB plans work on the stored bytes instead.
-- @return the new item and, with return_old, the old one; or nil,
--   message, code ("ValidationError" when the changes do not fit the
--   item: a path through a value of another type, `add` to a string, an
--   overflow)
-- @raise what an update function raises
function M.run(db, fn, txn, key, old, plan, return_old)
  if type(plan) == "function" then
    local kept = return_old and M.copy(old) or nil
    local new = M.apply(db, fn, key, old, plan)
    local ok, m, code, misuse = txn:put(new)
    if not ok then return errors.failed(fn, m, code, misuse) end
    return new, kept
  end
  local new, kept, code, misuse
  if return_old then
    new, kept, code, misuse = txn:update_return_old(key, plan.c)
  else
    new, kept, code, misuse = txn:update(key, plan.c)
  end
  if new then return new, kept end
  if code == "ValidationError" and not misuse then
    -- the changes do not fit the stored item: an expected failure
    return nil, string_format("dynafile.%s: %s", fn, kept), code
  end
  return errors.failed(fn, kept, code, misuse)
end

return M
