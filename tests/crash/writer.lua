-- writer.lua -- the process the crash tests kill (tests/crash/driver.lua,
-- tests/powerloss/driver.lua).
--
--   lua5.4 writer.lua DIR SEED FIRST_ID [SYNC [PREFIX]]
--
-- Opens the database in DIR with sync = SYNC ("full" by default) and
-- performs, on partition keys that start with PREFIX (default none, so
-- several writers can each keep to their own items), random puts,
-- conditional puts, updates, deletes, batches, transactions and
-- transact_write_items calls until it is killed.  Before each operation it
-- prints what the operation will do if it commits, and after the call
-- returns it prints the outcome, flushing after every line, so whatever
-- the driver has read when the process dies is what was acknowledged:
--
--   B <id> <kind>                      operation <id> starts
--   E <id> <pk> <sk> put <v> <g> <m>   effect: the item becomes {v, g, m}
--                                      ("-" for an absent g or m)
--   E <id> <pk> <sk> upd <v>           effect: v set, n incremented
--   E <id> <pk> <sk> del               effect: the item is deleted
--   A <id> ok <t> | A <id> cond <t>    acknowledged at time t (epoch
--                                      seconds, fractional): committed, or
--                                      refused by its condition (nothing
--                                      written)
local dynafile = require "dynafile"
local has_system, system = pcall(require, "system") -- lua-system: gettime

local dir, seed, first = arg[1], tonumber(arg[2]), tonumber(arg[3])
local sync, prefix = arg[4] or "full", arg[5] or ""
assert(dir and seed and first, "usage: writer.lua DIR SEED FIRST_ID [SYNC [PREFIX]]")
math.randomseed(seed)
local now = has_system and system.gettime or os.time

local out = io.stdout
local function say(...)
  out:write(table.concat({ ... }, " "), "\n")
  out:flush()
end

-- WRITER_CHECKPOINT_BYTES: checkpoints that often (to test them)
local db = assert(dynafile.open(dir, { sync = sync,
  checkpoint_bytes = tonumber(os.getenv("WRITER_CHECKPOINT_BYTES") or "") }))

local NPK, NSK = 6, 10
local function rkey()
  return prefix .. "p" .. math.random(0, NPK - 1), math.random(0, NSK - 1)
end
local function pad()
  local r = math.random()
  local n = r < 0.02 and math.random(3000, 9000) or math.random(0, 300)
  return string.rep(string.char(97 + math.random(0, 25)), n)
end
local function rg()
  if math.random() < 0.3 then return nil end
  return "g" .. math.random(0, 3)
end

-- The effects of one operation, applied by `run` in one call.
local function put_effect(id, pk, sk, item)
  say("E", id, pk, sk, "put", item.v, item.g or "-", item.m or "-")
end

-- ttl: far in the future, so nothing expires, but every item has an
-- expiry entry for the crash loop to check
local TTL = 4102444800
local function item_for(id, pk, sk, m)
  return { PK = pk, SK = sk, v = id, g = rg(), m = m, ttl = TTL, pad = pad() }
end

local function distinct_keys(n)
  local seen, keys = {}, {}
  while #keys < n do
    local pk, sk = rkey()
    if not seen[pk .. "/" .. sk] then
      seen[pk .. "/" .. sk] = true
      keys[#keys + 1] = { pk, sk }
    end
  end
  return keys
end

local ops = {}

function ops.put(id)
  local pk, sk = rkey()
  local it = item_for(id, pk, sk)
  say("B", id, "put")
  put_effect(id, pk, sk, it)
  assert(db:put_item(it))
  return "ok"
end

function ops.cput(id)
  local pk, sk = rkey()
  local it = item_for(id, pk, sk)
  say("B", id, "cput")
  put_effect(id, pk, sk, it)
  local ok, msg, code = db:put_item(it, { condition = "not exists(PK)" })
  if ok then return "ok" end
  assert(code == "ConditionalCheckFailed", msg)
  return "cond"
end

function ops.update(id)
  local pk, sk = rkey()
  say("B", id, "update")
  say("E", id, pk, sk, "upd", id)
  assert(db:update_item({ PK = pk, SK = sk }, { set = { v = id }, add = { n = 1 } }))
  return "ok"
end

function ops.delete(id)
  local pk, sk = rkey()
  say("B", id, "delete")
  say("E", id, pk, sk, "del")
  assert(db:delete_item { PK = pk, SK = sk })
  return "ok"
end

function ops.batch(id)
  local keys = distinct_keys(math.random(2, 12))
  local plan = {}
  say("B", id, "batch")
  for i, k in ipairs(keys) do
    if math.random() < 0.25 then
      plan[i] = false
      say("E", id, k[1], k[2], "del")
    else
      plan[i] = item_for(id, k[1], k[2])
      put_effect(id, k[1], k[2], plan[i])
    end
  end
  assert(db:batch_write(function(w)
    for i, k in ipairs(keys) do
      if plan[i] then
        w:put_item(plan[i])
      else
        w:delete_item { PK = k[1], SK = k[2] }
      end
    end
  end))
  return "ok"
end

-- N keys written with one marker value: all or none must be found.
function ops.transaction(id)
  local keys = distinct_keys(math.random(2, 10))
  local items = {}
  say("B", id, "transaction")
  for i, k in ipairs(keys) do
    items[i] = item_for(id, k[1], k[2], id)
    put_effect(id, k[1], k[2], items[i])
  end
  assert(db:transaction(function(tx)
    for _, it in ipairs(items) do tx:put_item(it) end
    return true
  end))
  return "ok"
end

function ops.twi(id)
  local keys = distinct_keys(math.random(2, 6))
  local actions = {}
  say("B", id, "twi")
  for i, k in ipairs(keys) do
    local r = math.random()
    if r < 0.5 then
      local it = item_for(id, k[1], k[2], id)
      put_effect(id, k[1], k[2], it)
      actions[i] = { put = it }
    elseif r < 0.75 then
      say("E", id, k[1], k[2], "upd", id)
      actions[i] = { update = { PK = k[1], SK = k[2] },
                     changes = { set = { v = id }, add = { n = 1 } } }
    else
      say("E", id, k[1], k[2], "del")
      actions[i] = { delete = { PK = k[1], SK = k[2] } }
    end
  end
  assert(db:transact_write_items(actions))
  return "ok"
end

local weights = {
  { "put", 30 }, { "cput", 8 }, { "update", 15 }, { "delete", 12 },
  { "batch", 12 }, { "transaction", 15 }, { "twi", 8 },
}
local total = 0
for _, w in ipairs(weights) do total = total + w[2] end
local function pick()
  local r = math.random(1, total)
  for _, w in ipairs(weights) do
    r = r - w[2]
    if r <= 0 then return w[1] end
  end
end

say("READY")
local id = first
while true do
  local outcome = ops[pick()](id)
  say("A", id, outcome, string.format("%.4f", now()))
  id = id + 1
end
