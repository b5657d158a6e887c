--- dynafile.serve.group: group commit of plain PutItems inside a worker.
--
-- Every write transaction of a table costs the same fixed price at its
-- commit (the redo-log record, LMDB's pages and meta page), whatever it
-- holds.  Under load an nginx worker has several PutItems in hand at
-- once; the first one of a table (the leader) yields for one turn of the
-- event loop (ngx.sleep(0)), the PutItems of the same table that arrive
-- meanwhile join it and wait on a semaphore, and the leader writes them
-- all in one transaction, in arrival order, then wakes them.  Alone, a
-- PutItem is written at once after that one turn.
--
-- Only PutItems without a condition or ReturnValues come here: each
-- request's answer is "written" or its own error, and neither depends on
-- the others.  If the shared transaction fails (one item refused by the
-- engine, say), each item is written again in its own transaction, so
-- every request gets the answer it would have had alone.
--
-- Invariant: a request is answered only after the transaction holding its
-- item committed (or failed), so nothing is acknowledged that a crash or
-- a killed worker could lose; requests on a table are written in the order
-- they arrived in this worker.
-- @module dynafile.serve.group

local pcall, error, setmetatable, tostring = pcall, error, setmetatable, tostring

local M = {}

local ngx = ngx -- luacheck: globals ngx
local semaphore
do
  local ok, mod = pcall(require, "ngx.semaphore")
  if ok and ngx and ngx.sleep then semaphore = mod end
end

-- Whether group commit is on (inside nginx, with lua-resty-core's
-- semaphores).
M.enabled = semaphore ~= nil

-- table name -> the group waiting for its leader's turn
local pending = {}

-- raised inside the shared transaction when one item's write failed
local REFUSED = setmetatable({}, { __tostring = function() return "a grouped write failed" end })

-- One write alone: {ok, msg, code} or {raised = error value}.
local function put_one(db, item)
  local ok, a, b, c = pcall(db.put_item, db, item)
  if not ok then return { raised = a } end
  return { a, b, c }
end

local function answer(r)
  if r.raised ~= nil then error(r.raised, 0) end
  return r[1], r[2], r[3]
end

--- Write `item` into table `name` (handle `db`), grouped with the other
-- PutItems of the table this worker has in hand.
-- @return what db:put_item returns (true, or nil, message, code)
-- @raise what db:put_item raises
function M.put(name, db, item)
  if not semaphore then return db:put_item(item) end
  local g = pending[name]
  if g and g.db == db then
    local i = #g.items + 1
    g.items[i] = item
    local ok, err = g.sema:wait(60)
    if not ok then
      error("dynafile serve: a grouped PutItem was not written (" .. tostring(err) .. ")", 0)
    end
    return answer(g.results[i])
  end
  g = { db = db, items = { item }, results = {}, sema = semaphore.new() }
  pending[name] = g
  ngx.sleep(0)
  if pending[name] == g then pending[name] = nil end
  local items, results = g.items, g.results
  local n = #items
  if n == 1 then
    results[1] = put_one(db, item)
  else
    local ok, r1 = pcall(db.transaction, db, function(tx)
      for i = 1, n do
        -- a failure returned (not raised) must roll the group back too
        if not tx:put_item(items[i]) then error(REFUSED, 0) end
      end
      return true
    end)
    if ok and r1 == true then
      local done = { true }
      for i = 1, n do results[i] = done end
    else
      -- something in the group was refused: each on its own
      for i = 1, n do results[i] = put_one(db, items[i]) end
    end
  end
  if n > 1 then g.sema:post(n - 1) end
  return answer(results[1])
end

return M
