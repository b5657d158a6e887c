--- tests/serve/group_test.lua -- dynafile.serve.group (group commit of
-- PutItems) under a model of nginx's event loop (run by tests/serve.sh).
--
--   luajit tests/serve/group_test.lua      (LUA_PATH set to the checkout's lua/)
--
-- Each request is a coroutine; ngx.sleep(0) and a semaphore wait yield to
-- a small scheduler that runs the other requests, as nginx runs the other
-- connections' handlers.  A stand-in table handle records its commits.
-- Prints one line per check and "N passed, N failed" last.

-- ------------------------------------------------------------ the model
local runnable = {}

local function schedule(co) runnable[#runnable + 1] = co end

local Sema = {}
Sema.__index = Sema
function Sema:wait()
  if self.count > 0 then
    self.count = self.count - 1
    return true
  end
  self.waiters[#self.waiters + 1] = coroutine.running()
  coroutine.yield()
  return true
end
function Sema:post(n)
  for _ = 1, n do
    local co = table.remove(self.waiters, 1)
    if co then schedule(co) else self.count = self.count + 1 end
  end
end
package.preload["ngx.semaphore"] = function()
  return { new = function() return setmetatable({ count = 0, waiters = {} }, Sema) end }
end
ngx = { -- luacheck: ignore 111
  sleep = function()
    schedule(coroutine.running())
    coroutine.yield()
  end,
}

local group = require "dynafile.serve.group"

-- A table handle: put_item and transaction, recording what was committed.
local function fake_db()
  local db = { written = {}, commits = 0 }
  function db.put_item(self, item)
    if item.bad then error("dynafile.put_item: attribute g is refused", 0) end
    if item.full then return nil, "no space left on device", "IOError" end
    self.written[#self.written + 1] = item.id
    self.commits = self.commits + 1
    return true
  end
  function db.transaction(self, fn)
    local staged = {}
    local tx = { put_item = function(_, item)
      if item.bad then error("dynafile.transaction.put_item: attribute g is refused", 0) end
      if item.full then return nil, "no space left on device", "IOError" end
      staged[#staged + 1] = item.id
      return true
    end }
    local r = fn(tx) -- an error rolls back: nothing staged is kept
    for _, id in ipairs(staged) do self.written[#self.written + 1] = id end
    self.commits = self.commits + 1
    return r
  end
  return db
end

-- Run requests {table, db, item} as if they arrived in one turn of the
-- event loop; returns each one's {ok, result...} in order.
local function run(requests)
  local results = {}
  for i, r in ipairs(requests) do
    schedule(coroutine.create(function()
      results[i] = { pcall(group.put, r[1], r[2], r[3]) }
    end))
  end
  while #runnable > 0 do
    local co = table.remove(runnable, 1)
    assert(coroutine.resume(co))
  end
  return results
end

-- ------------------------------------------------------------ checks
local passed, failed = 0, 0
local function check(name, fn)
  local ok, err = pcall(fn)
  if ok then
    passed = passed + 1
    print("ok   " .. name)
  else
    failed = failed + 1
    print("FAIL " .. name .. ": " .. tostring(err))
  end
end
local function same(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

check("group commit is on with a semaphore and ngx.sleep", function()
  assert(group.enabled)
end)

check("PutItems of one turn share one commit, written in arrival order", function()
  local db = fake_db()
  local rs = run { { "t", db, { id = 1 } }, { "t", db, { id = 2 } }, { "t", db, { id = 3 } },
    { "t", db, { id = 4 } } }
  for i = 1, 4 do assert(rs[i][1] and rs[i][2] == true, "request " .. i .. " answered true") end
  assert(db.commits == 1, "commits: " .. db.commits)
  assert(same(db.written, { 1, 2, 3, 4 }))
end)

check("a PutItem alone is written in its own commit", function()
  local db = fake_db()
  local rs = run { { "t", db, { id = 9 } } }
  assert(rs[1][1] and rs[1][2] == true)
  assert(db.commits == 1 and same(db.written, { 9 }))
end)

check("one refused item: it gets its own error, the others are written one by one", function()
  local db = fake_db()
  local rs = run { { "t", db, { id = 1 } }, { "t", db, { id = 2, bad = true } },
    { "t", db, { id = 3 } } }
  assert(rs[1][1] and rs[1][2] == true)
  assert(not rs[2][1] and tostring(rs[2][2]):find("is refused", 1, true), tostring(rs[2][2]))
  assert(rs[3][1] and rs[3][2] == true)
  assert(same(db.written, { 1, 3 }), table.concat(db.written, ","))
end)

check("a failure returned (not raised) for one item rolls the group back; the others are written",
  function()
    local db = fake_db()
    local rs = run { { "t", db, { id = 1 } }, { "t", db, { id = 2, full = true } },
      { "t", db, { id = 3 } } }
    assert(rs[1][1] and rs[1][2] == true)
    assert(rs[2][1] and rs[2][2] == nil and rs[2][4] == "IOError", tostring(rs[2][3]))
    assert(rs[3][1] and rs[3][2] == true)
    assert(same(db.written, { 1, 3 }), table.concat(db.written, ","))
  end)

check("the leader's own refusal reaches the leader only", function()
  local db = fake_db()
  local rs = run { { "t", db, { id = 1, bad = true } }, { "t", db, { id = 2 } } }
  assert(not rs[1][1])
  assert(rs[2][1] and rs[2][2] == true)
  assert(same(db.written, { 2 }))
end)

check("tables are grouped apart", function()
  local a, b = fake_db(), fake_db()
  local rs = run { { "a", a, { id = 1 } }, { "b", b, { id = 2 } }, { "a", a, { id = 3 } },
    { "b", b, { id = 4 } } }
  for i = 1, 4 do assert(rs[i][1] and rs[i][2] == true) end
  assert(a.commits == 1 and same(a.written, { 1, 3 }))
  assert(b.commits == 1 and same(b.written, { 2, 4 }))
end)

check("a new handle of the table (recreated) starts its own group", function()
  local old, new = fake_db(), fake_db()
  local rs = run { { "t", old, { id = 1 } }, { "t", new, { id = 2 } }, { "t", new, { id = 3 } } }
  for i = 1, 3 do assert(rs[i][1] and rs[i][2] == true) end
  assert(same(old.written, { 1 }))
  assert(same(new.written, { 2, 3 }))
end)

print(string.format("%d passed, %d failed", passed, failed))
os.exit(failed == 0 and 0 or 1)
