--- dynafile.update: what update_item does to an item.
--
-- Two forms of changes.  A table
--   `{set = {path = value}, remove = {path, ...}, add = {path = n_or_list},
--     delete = {path = {v, ...}}}`
-- is compiled once, before any transaction starts, into a plan (`compile`,
-- which raises on misuse), and the plan is applied inside the write
-- transaction (`apply`).  A function `function(old_or_nil) return new end`
-- is run by `apply` with the write transaction held.
--
-- Paths are `a.b[0].c`: attribute names separated by dots, 0-based list
-- positions in brackets, as in expression strings.  Every path of a table
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

local error, type, pairs, ipairs, next = error, type, pairs, ipairs, next
local tostring, tonumber = tostring, tonumber
local getmetatable, setmetatable = getmetatable, setmetatable
local string_format, table_sort, table_remove, table_concat =
  string.format, table.sort, table.remove, table.concat
local math_type = math.type -- nil before Lua 5.3
local math_maxinteger, math_mininteger = math.maxinteger, math.mininteger

local array_mt = core.array_mt

local M = {}

local CHANGE_KINDS = { set = true, remove = true, add = true, delete = true }
-- Largest integer a double holds exactly (Lua 5.1/LuaJIT numbers).
local EXACT = 2 ^ 53

local function raise(fn, fmt, ...)
  error(string_format("dynafile.%s: " .. fmt, fn, ...), 0)
end

--- Split a path into segments: strings for names, 1-based integers for
-- list positions.
-- @raise on a malformed path
function M.parse_path(fn, path)
  if type(path) ~= "string" or path == "" then
    raise(fn, "path must be a non-empty string, got %s", tostring(path))
  end
  local segs, i, n = {}, 1, #path
  while i <= n do
    local name, j = path:match("^([^%.%[%]]+)()", i)
    if name then
      segs[#segs + 1] = name
      i = j
    elseif path:sub(i, i) ~= "[" or i == 1 then
      raise(fn, "malformed path '%s' at character %d", path, i)
    end
    while path:sub(i, i) == "[" do
      local digits, k = path:match("^%[(%d+)%]()", i)
      if not digits then raise(fn, "malformed list position in path '%s'", path) end
      local pos = tonumber(digits)
      if pos >= 2 ^ 31 then raise(fn, "list position too large in path '%s'", path) end
      segs[#segs + 1] = pos + 1
      i = k
    end
    if i <= n then
      if path:sub(i, i) ~= "." or i == n then
        raise(fn, "malformed path '%s' at character %d", path, i)
      end
      i = i + 1
    end
  end
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

--- Compile `changes` into a plan, before any transaction starts.
-- A function is its own plan.
-- @raise on misuse: unknown kinds, malformed paths, a key attribute in a
--   path, overlapping paths, values of the wrong type
function M.compile(db, fn, changes)
  local tc = type(changes)
  if tc == "function" then return changes end
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
  return plan
end

--- A deep copy of an item (tables copied, list marks kept).
function M.copy(v)
  if type(v) ~= "table" then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = M.copy(x) end
  local mt = getmetatable(v)
  if mt == array_mt then setmetatable(t, mt) end
  return t
end

-- Is t (a container read from an item, or built by set) a list?
local function is_list(t)
  return t[1] ~= nil or getmetatable(t) == array_mt
end

-- Walk to the container holding the last segment of op.  Creates missing
-- maps when `create` (a missing container before a list position is an
-- error then).  Returns the container, or nil when something on the way
-- is missing (and not created), or false, message on a type mismatch.
local function container(item, op, create)
  local segs = op.segs
  local t = item
  for i = 1, #segs - 1 do
    local s = segs[i]
    local nxt = t[s]
    if nxt == nil or nxt == core.null then
      if not create then return nil end
      if type(segs[i + 1]) == "number" then
        return false, string_format("%s: '%s' does not exist, so it has no list position %d",
          op.where, spell(segs, i), segs[i + 1] - 1)
      end
      if type(s) == "number" then
        return false, string_format("%s: list position %d of '%s' does not exist",
          op.where, s - 1, spell(segs, i - 1))
      end
      nxt = {}
      t[s] = nxt
    elseif type(nxt) ~= "table" then
      return false, string_format("%s: '%s' holds a %s, not a map or a list",
        op.where, spell(segs, i), type(nxt))
    end
    local want_list = type(segs[i + 1]) == "number"
    if want_list ~= is_list(nxt) and (want_list or next(nxt) ~= nil
        or getmetatable(nxt) == array_mt) then
      return false, string_format("%s: '%s' is a %s, not a %s", op.where, spell(segs, i),
        want_list and "map" or "list", want_list and "list" or "map")
    end
    t = nxt
  end
  local last = segs[#segs]
  if #segs > 1 then
    local want_list = type(last) == "number"
    if want_list ~= is_list(t) and (want_list or next(t) ~= nil
        or getmetatable(t) == array_mt) then
      return false, string_format("%s: '%s' is a %s, not a %s", op.where,
        spell(segs, #segs - 1), want_list and "map" or "list", want_list and "list" or "map")
    end
  end
  return t, last
end

local function apply_set(item, op)
  local t, last = container(item, op, true)
  if not t then return t, last end
  if type(last) == "number" then
    local n = #t
    if last > n + 1 then last = n + 1 end -- past the end: append
  end
  t[last] = op.value
  return true
end

-- Add two numbers, refusing results an integer cannot hold exactly.
local function add_numbers(op, a, b)
  if math_type then
    if math_type(a) == "integer" and math_type(b) == "integer" then
      if (b > 0 and a > math_maxinteger - b) or (b < 0 and a < math_mininteger - b) then
        return nil, string_format("%s: %d + %d overflows a 64-bit integer", op.where, a, b)
      end
    end
    return a + b
  end
  local r = a + b
  if a == a - a % 1 and b == b - b % 1 and (r >= EXACT or r <= -EXACT) then
    return nil, string_format("%s: %.0f + %.0f is beyond 2^53, which numbers in this Lua "
      .. "cannot hold exactly", op.where, a, b)
  end
  return r
end

local function apply_add(item, op)
  local t, last = container(item, op, true)
  if not t then return t, last end
  local cur, v = t[last], op.value
  if cur == nil or cur == core.null then
    if type(last) == "number" and last > #t + 1 then last = #t + 1 end
    t[last] = type(v) == "table" and M.copy(v) or v
    return true
  end
  if type(v) == "number" then
    if type(cur) ~= "number" then
      return false, string_format("%s: '%s' holds a %s, not a number", op.where, op.path,
        type(cur))
    end
    local r, msg = add_numbers(op, cur, v)
    if r == nil then return false, msg end
    t[last] = r
    return true
  end
  if type(cur) ~= "table" or not is_list(cur) then
    return false, string_format("%s: '%s' is not a list", op.where, op.path)
  end
  for _, x in ipairs(v) do
    local present = false
    for _, c in ipairs(cur) do
      if c == x then present = true break end
    end
    if not present then cur[#cur + 1] = x end
  end
  return true
end

local function apply_delete(item, op)
  local t, last = container(item, op, false)
  if t == nil then return true end -- nothing there: nothing to delete
  if not t then return false, last end
  local cur = t[last]
  if cur == nil or cur == core.null then return true end
  if type(cur) ~= "table" or not is_list(cur) then
    return false, string_format("%s: '%s' is not a list", op.where, op.path)
  end
  local drop = {}
  for _, x in ipairs(op.value) do drop[x] = true end
  local j = 0
  for i = 1, #cur do
    local x = cur[i]
    cur[i] = nil
    if not drop[x] then
      j = j + 1
      cur[j] = x
    end
  end
  if j == 0 then setmetatable(cur, array_mt) end -- stays a list when emptied
  return true
end

local function descending(a, b) return a > b end

-- Remove paths: every target is found in the item first, then map
-- attributes are dropped and list positions removed per list, highest
-- first, so each path means what it meant in the old item.
local function apply_removes(item, ops)
  if #ops == 0 then return true end
  local lists, positions = {}, {}
  local drops = {}
  for _, op in ipairs(ops) do
    local t, last = container(item, op, false)
    if t == false then return false, last end
    if t then
      if type(last) == "number" then
        local p = positions[t]
        if not p then
          p = {}
          positions[t] = p
          lists[#lists + 1] = t
        end
        p[#p + 1] = last
      else
        drops[#drops + 1] = { t, last }
      end
    end
  end
  for _, d in ipairs(drops) do d[1][d[2]] = nil end
  for _, t in ipairs(lists) do
    local p = positions[t]
    table_sort(p, descending)
    for _, i in ipairs(p) do
      if i <= #t then table_remove(t, i) end
    end
    if #t == 0 then setmetatable(t, array_mt) end
  end
  return true
end

--- Apply a plan to `old` (nil: the item is created from `key`) and return
-- the new item.  Runs inside the write transaction.  A table plan changes
-- `old` in place (pass a copy to keep it).  A function plan receives `old`
-- and returns the new item; key attributes it leaves out are filled in
-- from `key`.
-- @return the new item, or nil, message when the changes do not fit the
--   item (a path through a value of another type, `add` to a non-number,
--   an integer overflow): a ValidationError for the caller
-- @raise what the update function raises; when it returns no table or
--   changes a key attribute
function M.apply(db, fn, key, old, plan)
  local pk, sk = db._pk, db._sk
  if type(plan) == "function" then
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
  local item = old or {}
  item[pk] = key[pk]
  if sk then item[sk] = key[sk] end
  local ok, msg = true, nil
  for _, op in ipairs(plan.set) do
    if ok then ok, msg = apply_set(item, op) end
  end
  for _, op in ipairs(plan.add) do
    if ok then ok, msg = apply_add(item, op) end
  end
  for _, op in ipairs(plan.delete) do
    if ok then ok, msg = apply_delete(item, op) end
  end
  if ok then ok, msg = apply_removes(item, plan.remove) end
  if not ok then return nil, string_format("dynafile.%s: %s", fn, msg) end
  return item
end

return M
