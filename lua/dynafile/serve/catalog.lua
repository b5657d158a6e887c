--- dynafile.serve.catalog: the tables of a `dynafile serve` data directory.
--
-- Layout of the data directory DIR:
--
--     DIR/<TableName>/        one dynafile database per table (its items,
--                             indexes, TTL entries and change log)
--     DIR/@serve/catalog/     the catalog: a dynafile database of one
--                             record per table, with what DynamoDB keeps
--                             about a table and dynafile does not (key
--                             types, status, creation time, billing mode,
--                             throughput, index status, stream and TTL
--                             settings, tags, ...), and of pending
--                             multi-table transactions and idempotency
--                             tokens (transact.lua)
--     DIR/@serve/tmp/, trash/ tables being created and deleted
--     DIR/@serve/run/         nginx's runtime files (cli.lua)
--
-- "@" cannot appear in a table name, so no table collides with @serve.
--
-- Every worker keeps each table's record and an open handle in a cache.
-- Writers of the catalog bump a generation counter in nginx's shared
-- memory after each change; a worker compares it with its cache at every
-- request and re-reads what changed.  The catalog itself is the truth:
-- the counter is only a signal, so a restart (which clears shared memory)
-- loses nothing.
--
-- Creating a table is crash-safe and race-free: the record is put with
-- status CREATING under a condition that none exists (so of two workers
-- creating the same name, one wins), the database is built in
-- @serve/tmp and renamed into place (atomic), and the record turns ACTIVE.
-- Deleting marks the record DELETING, renames the directory into
-- @serve/trash, removes it and then the record.  `recover` (run by the
-- nginx master before it starts the workers) finishes or undoes what a
-- crash interrupted: CREATING records are undone (their CreateTable was
-- never answered), DELETING ones finished, tmp and trash emptied.
-- @module dynafile.serve.catalog

local dynafile = require "dynafile"
local errors = require "dynafile.serve.errors"
local size = require "dynafile.serve.size"

local ipairs, tostring, error, pcall = ipairs, tostring, error, pcall
local string_format, os_rename, os_time = string.format, os.rename, os.time
local table_sort = table.sort
local io_open = io.open

local M = {}

local state = {
  dir = nil,         -- the data directory
  sync = "normal",   -- the sync mode of table databases
  db = nil,          -- this worker's catalog handle
  shm = nil,         -- ngx.shared dict (generation counter, locks)
  cache = {},        -- table name -> {rec, gen, db, dbv}
}
M.state = state

local CATALOG = "@serve/catalog"

local function now()
  if ngx then return ngx.now() end -- luacheck: ignore 113
  return os_time()
end

local function sys() return require "dynafile.serve.sys" end

--- A fresh random identifier (hex).
function M.random_id(nbytes)
  local f = io_open("/dev/urandom", "rb")
  local s = f and f:read(nbytes or 16) or tostring({}) .. now()
  if f then f:close() end
  return (s:gsub(".", function(c) return string_format("%02x", c:byte()) end))
end

local function catalog_open(dir)
  return dynafile.open(dir .. "/" .. CATALOG, {
    pk = "kind", sk = "name", ttl = "expires", sync = "full",
  })
end

local function internal(fmt, ...)
  errors.raise("InternalServerError", string_format(fmt, ...))
end

--- Set up this process's view of the catalog (init_worker).
-- @tparam table cfg `dir`, `sync`
-- @param shm the shared dictionary
function M.init_worker(cfg, shm)
  state.dir, state.sync, state.shm = cfg.dir, cfg.sync or "normal", shm
  local db, msg = catalog_open(cfg.dir)
  if not db then return nil, msg end
  state.db = db
  return true
end

local function bump()
  local shm = state.shm
  if shm then shm:incr("gen", 1, 0) end
end
M.bump = bump

local function gen()
  local shm = state.shm
  return shm and shm:get("gen") or 0
end

--- The path of a table's database.
function M.path(name)
  return state.dir .. "/" .. name
end

local function get_record(name)
  local rec, msg, code = state.db:get_item({ kind = "table", name = name })
  if rec == nil and code then internal("the catalog cannot be read: %s", msg) end
  return rec
end

local function close_entry(e)
  if e.db then
    e.db:close()
    e.db = nil
  end
end

-- The cache entry of a table, brought up to date with the catalog.
local function entry(name)
  local cache = state.cache
  local e = cache[name]
  local g = gen()
  if e and e.gen == g then return e end
  local rec = get_record(name)
  if not rec then
    if e then
      close_entry(e)
      cache[name] = nil
    end
    return nil
  end
  if e and (e.rec.id ~= rec.id or e.dbv ~= rec.dbv) then close_entry(e) end
  if not e then
    e = {}
    cache[name] = e
  end
  e.rec, e.gen, e.dbv = rec, g, rec.dbv
  return e
end

--- A table's catalog record, or nil.
function M.record(name)
  local e = entry(name)
  return e and e.rec
end

--- Forget a table's cached handle (after its database changed under it).
function M.forget(name)
  local e = state.cache[name]
  if e then
    close_entry(e)
    state.cache[name] = nil
  end
end

local function open_db(name)
  -- DynamoDB's 400 KB item limit, kept by the engine on every write path
  local db, msg, code = dynafile.open(M.path(name), { sync = state.sync,
    max_item_size = size.MAX_ITEM })
  if not db then internal("table %s cannot be opened: %s (%s)", name, tostring(msg),
    tostring(code)) end
  return db
end

--- A table ready for reads and writes: its record and open handle.
-- Raises ResourceNotFoundException when the table does not exist or is
-- not (yet, any more) usable, as DynamoDB does.
-- @treturn table the record
-- @treturn db the handle
function M.table(name)
  local e = entry(name)
  if not e then errors.not_found() end
  local status = e.rec.status
  if status ~= "ACTIVE" and status ~= "UPDATING" then errors.not_found() end
  local db = e.db
  if not db then
    db = open_db(name)
    e.db = db
  end
  return e.rec, db
end

--- The names of all tables, sorted.
function M.names()
  local out = {}
  local nk = nil
  repeat
    local items, code
    items, nk, code = state.db:query_page("table", { start_after = nk, limit = 1000 })
    if not items then
      internal("the catalog cannot be read: %s (%s)", tostring(nk), tostring(code))
    end
    for _, rec in ipairs(items) do out[#out + 1] = rec.name end
  until nk == nil
  return out
end

--- Run fn(rec) on a table's record inside a catalog write transaction;
-- fn changes rec in place (or raises a DynamoDB error, changing nothing).
-- The record's version goes up; `dbv` too when fn returns true (the
-- table's database changed: every worker reopens it).
-- @treturn table the record as stored
function M.update(name, fn)
  local result
  local ok, msg, code = state.db:transaction(function(tx)
    local rec = tx:get_item({ kind = "table", name = name })
    if not rec then errors.not_found() end
    local db_changed = fn(rec)
    rec.version = (rec.version or 0) + 1
    if db_changed then rec.dbv = (rec.dbv or 0) + 1 end
    tx:put_item(rec)
    result = rec
  end)
  if ok == nil and code then internal("the catalog cannot be written: %s (%s)", tostring(msg),
    tostring(code)) end
  bump()
  return result
end

-- ------------------------------------------------------------ create, delete

local function remove_tree(path)
  local ok, msg = sys().remove_tree(path)
  if not ok then internal("%s", msg) end
end

--- Create a table: claim the name, build the database with `build(path)`
-- (which opens it with its schema and closes it), move it into place and
-- mark the record ACTIVE.
-- @tparam table rec the new record (status is set here)
-- @tparam function build called with the temporary path
-- @raise ResourceInUseException when the table exists
function M.create(rec, build)
  local name = rec.name
  rec.kind, rec.status, rec.owner = "table", "CREATING", sys().getpid()
  rec.version, rec.dbv = 1, 1
  local ok, msg, code = state.db:put_item(rec, {
    condition = function(old) return old == nil end,
  })
  if not ok then
    if code == "ConditionalCheckFailed" then
      local old = get_record(name)
      if old and (old.status == "CREATING" or old.status == "DELETING")
          and old.owner and not sys().alive(old.owner) then
        -- left behind by a worker that died: undo it and try again
        M.recover_one(old)
        return M.create(rec, build)
      end
      errors.raise("ResourceInUseException", "Table already exists: " .. name)
    end
    internal("the catalog cannot be written: %s (%s)", tostring(msg), tostring(code))
  end
  bump()
  local tmp = state.dir .. "/@serve/tmp/" .. rec.id
  local path = M.path(name)
  local built, err = pcall(function()
    remove_tree(tmp)
    build(tmp)
    -- a directory left by a crash before its record was removed
    remove_tree(path)
    local rok, rmsg = os_rename(tmp, path)
    if not rok then internal("cannot move the new table into place: %s", tostring(rmsg)) end
    sys().fsync_dir(state.dir)
  end)
  if not built then
    pcall(remove_tree, tmp)
    state.db:delete_item({ kind = "table", name = name })
    bump()
    error(err, 0)
  end
  local done = M.update(name, function(r)
    r.status, r.owner = "ACTIVE", nil
  end)
  return done
end

--- Delete a table: mark it DELETING, move its directory to the trash,
-- remove it, then remove its record.
-- @tparam string name
-- @tparam function check called with the record before anything changes;
--   it raises to refuse (deletion protection, a table in use)
-- @treturn table the record as it was when deletion started
function M.delete(name, check)
  local rec = M.update(name, function(r)
    check(r)
    r.status, r.owner = "DELETING", sys().getpid()
  end)
  M.forget(name)
  M.recover_one(rec)
  return rec
end

--- Finish a DELETING record or undo a CREATING one.
function M.recover_one(rec)
  local name = rec.name
  local path = M.path(name)
  if rec.status == "DELETING" then
    local trash = state.dir .. "/@serve/trash/" .. rec.id
    sys().mkdir(state.dir .. "/@serve/trash")
    if os_rename(path, trash) then sys().fsync_dir(state.dir) end
    remove_tree(trash)
  elseif rec.status == "CREATING" then
    remove_tree(state.dir .. "/@serve/tmp/" .. rec.id)
  else
    return
  end
  state.db:delete_item({ kind = "table", name = name }, {
    condition = function(old) return old ~= nil and old.id == rec.id end,
  })
  bump()
end

--- Prepare the data directory and finish what a crash interrupted (in
-- the nginx master, before the workers start; see the module comment).
-- @tparam string dir the data directory
-- @treturn true|nil
-- @treturn string the reason on failure
function M.recover(dir)
  local s = sys()
  for _, d in ipairs { dir .. "/@serve", dir .. "/@serve/tmp", dir .. "/@serve/trash" } do
    local ok, msg = s.mkdir(d)
    if not ok then return nil, msg end
  end
  local db, msg = catalog_open(dir)
  if not db then return nil, msg end
  local saved_dir, saved_db = state.dir, state.db
  state.dir, state.db = dir, db
  local ok, err = pcall(function()
    local names = M.names()
    for _, name in ipairs(names) do
      local rec = get_record(name)
      if rec and (rec.status == "CREATING" or rec.status == "DELETING") then
        M.recover_one(rec)
      end
    end
    for _, sub in ipairs { "/@serve/tmp", "/@serve/trash" } do
      local entries = s.list_dir(dir .. sub) or {}
      for _, e in ipairs(entries) do remove_tree(dir .. sub .. "/" .. e) end
    end
  end)
  db:close()
  state.dir, state.db = saved_dir, saved_db
  if not ok then return nil, errors.is(err) and err.message or tostring(err) end
  return true
end

--- The catalog handle (for transact.lua's intents and tokens).
function M.db()
  return state.db
end

--- The generation counter (for tests and transact.lua).
M.gen = gen

-- sort helper for callers listing names
M.sort = table_sort

return M
