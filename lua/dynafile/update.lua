--- dynafile.update: applying update_item's changes to an item.
--
-- Two forms: a table `{set = {path = value}, remove = {path, ...},
-- add = {path = n}, delete = {path = {v, ...}}}` and a function of the
-- old item returning the new one.  Paths are `a.b[0].c`: names separated
-- by dots, list positions 0-based in brackets (as in filter strings).
-- Invariant: the key attributes of the item never change.
-- @module dynafile.update

local error, type, pairs, ipairs, tostring, tonumber = error, type, pairs, ipairs, tostring, tonumber
local string_format, table_remove = string.format, table.remove
local math_type = math.type

local M = {}

local CHANGE_KINDS = { set = true, remove = true, add = true, delete = true }

local function fail(fn, fmt, ...)
  error(string_format("dynafile.%s: " .. fmt, fn, ...), 0)
end

--- Split a path into segments: strings for names, 1-based integers for
-- list positions.  Raises on a malformed path.
function M.parse_path(fn, path)
  if type(path) ~= "string" or path == "" then
    fail(fn, "path must be a non-empty string, got %s", tostring(path))
  end
  local segs, i, n = {}, 1, #path
  while i <= n do
    local name, j = path:match("^([^%.%[%]]+)()", i)
    if name then
      segs[#segs + 1] = name
      i = j
    elseif path:sub(i, i) ~= "[" then
      fail(fn, "malformed path '%s' at character %d", path, i)
    end
    while path:sub(i, i) == "[" do
      local digits, k = path:match("^%[(%d+)%]()", i)
      if not digits then fail(fn, "malformed list index in path '%s'", path) end
      segs[#segs + 1] = tonumber(digits) + 1
      i = k
    end
    if i <= n then
      if path:sub(i, i) ~= "." or i == n then
        fail(fn, "malformed path '%s' at character %d", path, i)
      end
      i = i + 1
    end
  end
  if type(segs[1]) ~= "string" then fail(fn, "path '%s' must start with a name", path) end
  return segs
end

local function is_key_attr(db, name)
  return name == db._pk or (db._sk ~= nil and name == db._sk)
end

--- Check the shape of `changes` before any transaction starts.
function M.check(db, fn, key, changes)
  local tc = type(changes)
  if tc == "function" then return end
  if tc ~= "table" then
    fail(fn, "changes must be a table or a function, got %s", tc)
  end
  for kind, v in pairs(changes) do
    if not CHANGE_KINDS[kind] then
      fail(fn, "changes: unknown kind '%s' (set, remove, add, delete)", tostring(kind))
    end
    if type(v) ~= "table" then fail(fn, "changes.%s must be a table", kind) end
    if kind == "remove" then
      for i, p in ipairs(v) do
        local segs = M.parse_path(fn, p)
        if #segs == 1 and is_key_attr(db, segs[1]) then
          fail(fn, "changes.remove[%d]: cannot remove key attribute %s", i, segs[1])
        end
      end
    else
      for p, val in pairs(v) do
        local segs = M.parse_path(fn, p)
        if is_key_attr(db, segs[1]) then
          fail(fn, "changes.%s: cannot change key attribute %s", kind, segs[1])
        end
        if kind == "add" and type(val) ~= "number" and type(val) ~= "table" then
          fail(fn, "changes.add.%s must be a number or a list", p)
        end
        if kind == "delete" and type(val) ~= "table" then
          fail(fn, "changes.delete.%s must be a list of values to remove", p)
        end
      end
    end
  end
  local _ = key
end

-- Walk to the parent of the last segment, creating maps when `create`.
local function parent_of(fn, item, segs, create, path)
  local t = item
  for i = 1, #segs - 1 do
    local s = segs[i]
    local nxt = t[s]
    if nxt == nil then
      if not create then return nil end
      if type(s) == "number" then
        fail(fn, "path '%s': list position %d does not exist", path, s - 1)
      end
      nxt = {}
      t[s] = nxt
    elseif type(nxt) ~= "table" then
      fail(fn, "path '%s': %s is not a map or a list", path, tostring(s))
    end
    t = nxt
  end
  return t
end

local function set_path(fn, item, path, value)
  local segs = M.parse_path(fn, path)
  local parent = parent_of(fn, item, segs, true, path)
  local last = segs[#segs]
  if type(last) == "number" then
    local len = #parent
    if last > len + 1 then last = len + 1 end -- past the end: append
  end
  parent[last] = value
end

local function remove_path(fn, item, path)
  local segs = M.parse_path(fn, path)
  local parent = parent_of(fn, item, segs, false, path)
  if parent == nil then return end
  local last = segs[#segs]
  if type(last) == "number" then
    if last <= #parent then table_remove(parent, last) end
  else
    parent[last] = nil
  end
end

local function add_path(fn, item, path, value)
  local segs = M.parse_path(fn, path)
  local parent = parent_of(fn, item, segs, true, path)
  local last = segs[#segs]
  local cur = parent[last]
  if cur == nil then
    parent[last] = value
  elseif type(value) == "number" then
    if type(cur) ~= "number" then
      fail(fn, "changes.add.%s: the attribute is not a number", path)
    end
    local r = cur + value
    if math_type and math_type(cur) == "integer" and math_type(value) == "integer" then
      r = cur + value -- integer arithmetic (wraps like Lua integers)
    end
    parent[last] = r
  else
    if type(cur) ~= "table" then
      fail(fn, "changes.add.%s: the attribute is not a list", path)
    end
    for _, v in ipairs(value) do
      local present = false
      for _, c in ipairs(cur) do
        if c == v then present = true break end
      end
      if not present then cur[#cur + 1] = v end
    end
  end
end

local function delete_path(fn, item, path, values)
  local segs = M.parse_path(fn, path)
  local parent = parent_of(fn, item, segs, false, path)
  if parent == nil then return end
  local cur = parent[segs[#segs]]
  if cur == nil then return end
  if type(cur) ~= "table" then
    fail(fn, "changes.delete.%s: the attribute is not a list", path)
  end
  for i = #cur, 1, -1 do
    for _, v in ipairs(values) do
      if cur[i] == v then
        table_remove(cur, i)
        break
      end
    end
  end
end

--- Apply `changes` to `old` (nil: the item is created from `key`) and
-- return the new item.  Runs inside the write transaction.
function M.apply(db, fn, key, old, changes)
  local pk, sk = db._pk, db._sk
  if type(changes) == "function" then
    local new = changes(old)
    if type(new) ~= "table" then
      fail(fn, "the update function must return the new item (a table), got %s", type(new))
    end
    if new[pk] ~= key[pk] or (sk and new[sk] ~= key[sk]) then
      fail(fn, "the update function may not change key attributes (%s%s)", pk,
        sk and (" and " .. sk) or "")
    end
    return new
  end
  local item = old or {}
  item[pk] = key[pk]
  if sk then item[sk] = key[sk] end
  if changes.set then
    for path, v in pairs(changes.set) do set_path(fn, item, path, v) end
  end
  if changes.remove then
    -- remove list positions from the highest down so indexes stay valid
    local paths = {}
    for _, p in ipairs(changes.remove) do paths[#paths + 1] = p end
    table.sort(paths, function(a, b) return a > b end)
    for _, p in ipairs(paths) do remove_path(fn, item, p) end
  end
  if changes.add then
    for path, v in pairs(changes.add) do add_path(fn, item, path, v) end
  end
  if changes.delete then
    for path, v in pairs(changes.delete) do delete_path(fn, item, path, v) end
  end
  return item
end

return M
