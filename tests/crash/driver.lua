-- driver.lua -- the crash loop: run tests/crash/writer.lua, kill it with
-- SIGKILL at a random moment, reopen the database and check it.
--
--   lua5.4 driver.lua KILLS [SEED]
--
-- Environment: LUA (interpreter for the writer, default lua5.4),
-- CRASH_MAX_MS (longest time before a kill, default 250), CRASH_DIR
-- (database directory; default a fresh temporary one, removed at the end).
--
-- The driver keeps a model of the database: for every key, the item the
-- acknowledged operations left there ({v, n, g, m}).  After each kill:
--  - every operation acknowledged before the kill must be in the database
--    (the model, updated with them, must equal a full scan exactly);
--  - the one operation that was running when the kill came (started, not
--    acknowledged) must be applied entirely or not at all -- its items,
--    e.g. all N items of a transaction with one marker value, are either
--    all in their new state or all in their old one;
--  - nothing else is in the database;
--  - every index agrees with the items (a GSI, an LSI, and db:check()
--    over every index and TTL expiry entry);
--  - the change log has no gap, and replaying it gives the items.
-- It prints the counts and ends with "N passed, N failed" (one check per
-- kill); the exit status is 1 when any check failed.
--
-- CRASH_TAMPER=1 checks the checker: after each kill the driver itself
-- deletes one acknowledged item, or rewrites one item of the last
-- multi-item operation, before checking; every cycle must then fail.
local dynafile = require "dynafile"

local KILLS = tonumber(arg[1]) or 200
local SEED = tonumber(arg[2]) or os.time()
local LUA = os.getenv("LUA") or "lua5.4"
local MAX_MS = tonumber(os.getenv("CRASH_MAX_MS") or "") or 250
local here = arg[0]:match("^(.*)/[^/]*$") or "."
local WRITER = here .. "/writer.lua"

math.randomseed(SEED)

local dir = os.getenv("CRASH_DIR")
local own_dir = false
if not dir or dir == "" then
  dir = os.tmpname()
  os.remove(dir)
  own_dir = true
end

local function shq(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- model[key] = {v=, n=, g=, m=}; key = pk .. "/" .. sk
local model = {}
local function keyof(pk, sk) return pk .. "/" .. sk end

local function copy(it)
  if not it then return nil end
  return { v = it.v, n = it.n, g = it.g, m = it.m }
end

local function same(a, b)
  if a == nil or b == nil then return a == b end
  return a.v == b.v and a.n == b.n and a.g == b.g and a.m == b.m
end

local function show(it)
  if not it then return "absent" end
  return string.format("{v=%s n=%s g=%s m=%s}", tostring(it.v), tostring(it.n),
                       tostring(it.g), tostring(it.m))
end

-- Apply op's effects to state (a table key -> item); returns the new
-- state of every key the op touches.
local function apply(state, op)
  for _, e in ipairs(op.effects) do
    local k = keyof(e.pk, e.sk)
    if e.kind == "put" then
      state[k] = { v = e.v, g = e.g, m = e.m }
    elseif e.kind == "upd" then
      local old = state[k]
      local new = copy(old) or {}
      new.v = e.v
      new.n = (old and old.n or 0) + 1
      state[k] = new
    else
      state[k] = nil
    end
  end
end

local function touched(op)
  local t, list = {}, {}
  for _, e in ipairs(op.effects) do
    local k = keyof(e.pk, e.sk)
    if not t[k] then
      t[k] = true
      list[#list + 1] = k
    end
  end
  return list
end

-- Parse the writer's output into operations.
local function parse(lines)
  local ops, by_id = {}, {}
  local ready = false
  for _, line in ipairs(lines) do
    local w = {}
    for x in line:gmatch("%S+") do w[#w + 1] = x end
    if w[1] == "READY" then
      ready = true
    elseif w[1] == "B" then
      local op = { id = tonumber(w[2]), kind = w[3], effects = {} }
      ops[#ops + 1] = op
      by_id[op.id] = op
    elseif w[1] == "E" then
      local op = assert(by_id[tonumber(w[2])], "effect before its operation")
      local e = { pk = w[3], sk = tonumber(w[4]), kind = w[5] }
      if e.kind == "put" then
        e.v = tonumber(w[6])
        e.g = w[7] ~= "-" and w[7] or nil
        e.m = w[8] ~= "-" and tonumber(w[8]) or nil
      elseif e.kind == "upd" then
        e.v = tonumber(w[6])
      end
      op.effects[#op.effects + 1] = e
    elseif w[1] == "A" then
      local op = assert(by_id[tonumber(w[2])], "ack before its operation")
      op.outcome = w[3]
    elseif line ~= "" then
      -- anything else (an error message from the writer) is reported
      ops.stray = (ops.stray or "") .. line .. "\n"
    end
  end
  ops.ready = ready
  return ops
end

-- Read every item of the database into key -> {v, n, g, m}.
local function snapshot(db)
  local s, count = {}, 0
  for it in db:scan() do
    s[keyof(it.PK, it.SK)] = { v = it.v, n = it.n, g = it.g, m = it.m }
    count = count + 1
  end
  return s, count
end

-- The schema the driver creates: a sparse GSI on g (a third of the items
-- have none), an LSI on v, and a TTL attribute no item ever expires by
-- (so every item also has an expiry entry to keep in step).
local LOG_KEEP = 20000 -- change-log records kept: many more than one cycle writes
local SCHEMA = {
  pk = "PK", sk = "SK", ttl = "ttl", sync = "full", stream = { keep = LOG_KEEP },
  gsi = { by_g = { pk = "g", sk = "v" } },
  lsi = { by_v = { sk = "v" } },
}

local function open_db(create)
  local db, msg, code = dynafile.open(dir, create and SCHEMA or { sync = "full" })
  if not db then error("reopen failed: " .. tostring(msg) .. " (" .. tostring(code) .. ")") end
  return db
end

-- create the database before the first kill
open_db(true):close()

local kills, acked, checked_items, violations, failed_cycles = 0, 0, 0, 0, 0
local next_id, half_checked, applied_inflight = 1, 0, 0
local checked_index, checked_log = 0, 0
local log_state, log_seq = {}, 0 -- items as the change log tells them
local started = os.clock()
local wall = os.time()

local function violation(cycle, fmt, ...)
  violations = violations + 1
  io.stderr:write(string.format("cycle %d: VIOLATION: " .. fmt .. "\n", cycle, ...))
end

for cycle = 1, KILLS do
  local ms = math.random(5, MAX_MS)
  local cmd = string.format("exec timeout -s KILL %.3f %s %s %s %d %d 2>&1", ms / 1000, LUA,
                            shq(WRITER), shq(dir), math.random(1, 2 ^ 30), next_id)
  local p = assert(io.popen(cmd, "r"))
  local lines = {}
  for line in p:lines() do lines[#lines + 1] = line end
  p:close()
  kills = kills + 1
  local before = violations

  local ops = parse(lines)
  if ops.stray then
    violation(cycle, "writer printed: %s", ops.stray)
  end
  -- acknowledged operations, in order; at most one unacknowledged at the end
  local inflight
  for i, op in ipairs(ops) do
    if op.outcome then
      if op.outcome == "ok" then apply(model, op) end
      acked = acked + 1
    elseif i == #ops then
      inflight = op
    else
      violation(cycle, "operation %d has no outcome but is not the last", op.id)
    end
    next_id = math.max(next_id, op.id + 1)
  end

  local db = open_db()
  if os.getenv("CRASH_TAMPER") == "1" then
    local victim
    if inflight and #inflight.effects > 1 and math.random() < 0.5 then
      -- make the interrupted operation half applied, whichever way it went
      local e = inflight.effects[1]
      local it = db:get_item { PK = e.pk, SK = e.sk }
      if it then
        assert(db:delete_item { PK = e.pk, SK = e.sk })
      else
        assert(db:put_item { PK = e.pk, SK = e.sk, v = -1 })
      end
      victim = true
    end
    if not victim then
      local ks = {}
      for k in pairs(model) do ks[#ks + 1] = k end
      table.sort(ks)
      if #ks > 0 then
        local pk, sk = ks[math.random(#ks)]:match("^(.*)/(%d+)$")
        assert(db:delete_item { PK = pk, SK = tonumber(sk) })
      else
        assert(db:put_item { PK = "p0", SK = 0, v = -1 })
      end
    end
  end
  local snap = snapshot(db)
  -- the in-flight operation: all of it or none of it
  if inflight then
    local after = {}
    for k, v in pairs(model) do after[k] = v end
    apply(after, inflight)
    local keys = touched(inflight)
    local all_old, all_new = true, true
    for _, k in ipairs(keys) do
      if not same(snap[k], model[k]) then all_old = false end
      if not same(snap[k], after[k]) then all_new = false end
    end
    half_checked = half_checked + 1
    if all_new and not all_old then
      model = after
      applied_inflight = applied_inflight + 1
    elseif not all_old and not all_new then
      local detail = {}
      for _, k in ipairs(keys) do
        detail[#detail + 1] = string.format("%s: found %s, before %s, after %s", k,
                                            show(snap[k]), show(model[k]), show(after[k]))
      end
      violation(cycle, "operation %d (%s) is half applied:\n  %s", inflight.id, inflight.kind,
                table.concat(detail, "\n  "))
      model = snap -- go on from what is there
    end
  end
  -- every index agrees with the items: the GSI holds exactly the items
  -- with a g, the LSI every item of each partition, and db:check() finds
  -- no missing or stale index or expiry entry
  local by_g, by_pk = {}, {}
  for k, it in pairs(snap) do
    local pk = k:match("^(.*)/")
    if it.g then by_g[it.g] = (by_g[it.g] or 0) + 1 end
    by_pk[pk] = (by_pk[pk] or 0) + 1
  end
  for g = 0, 3 do
    local name, n, last = "g" .. g, 0, nil
    for it in db:query(name, { index = "by_g" }) do
      n = n + 1
      local as_item = { v = it.v, n = it.n, g = it.g, m = it.m }
      if it.g ~= name or not same(snap[keyof(it.PK, it.SK)], as_item) then
        violation(cycle, "index by_g: entry %s/%s does not match its item", it.PK, it.SK)
      end
      if last and it.v < last then violation(cycle, "index by_g: %s out of order", name) end
      last = it.v
    end
    checked_index = checked_index + n
    if n ~= (by_g[name] or 0) then
      violation(cycle, "index by_g: %d entries for %s, %d items have it", n, name, by_g[name] or 0)
    end
  end
  for pn = 0, 5 do
    local pk, n = "p" .. pn, 0
    for _ in db:query(pk, { index = "by_v" }) do n = n + 1 end
    checked_index = checked_index + n
    if n ~= (by_pk[pk] or 0) then
      violation(cycle, "index by_v: %d entries in %s, %d items", n, pk, by_pk[pk] or 0)
    end
  end
  -- the change log: sequence numbers without a gap since the last check,
  -- and replaying its new records onto the state of the last check gives
  -- exactly the items now (no record of an uncommitted change, none
  -- missing for a committed one)
  while true do
    local evs, nxt, first = db._c:stream_read(log_seq, 256)
    if not evs then
      violation(cycle, "change log unreadable: %s", tostring(nxt))
      break
    end
    if #evs > 0 and first > log_seq + 1 then
      violation(cycle, "change log starts at %d: records after %d were trimmed", first, log_seq)
    end
    for _, ev in ipairs(evs) do
      if ev.seq ~= log_seq + 1 then
        violation(cycle, "change log: record %d follows %d", ev.seq, log_seq)
      end
      log_seq = ev.seq
      checked_log = checked_log + 1
      local it = ev.new or ev.old
      local k = keyof(it.PK, it.SK)
      if ev.action == "PUT" then
        log_state[k] = { v = it.v, n = it.n, g = it.g, m = it.m }
      else
        log_state[k] = nil
      end
    end
    if #evs == 0 or nxt == log_seq and #evs < 256 then break end
  end
  for k, it in pairs(snap) do
    if not same(log_state[k], it) then
      violation(cycle, "change log replay: %s is %s, the items say %s", k,
                show(log_state[k]), show(it))
    end
  end
  for k, it in pairs(log_state) do
    if snap[k] == nil then
      violation(cycle, "change log replay: %s is %s, but there is no such item", k, show(it))
    end
  end
  log_state = {}
  for k, it in pairs(snap) do log_state[k] = it end
  local report, cmsg = db:check()
  if not report or not report.ok then
    violation(cycle, "db:check() reports problems: %s", report and string.format(
      "bad_items %s missing_index %s stale_index %s missing_expiry %s stale_expiry %s",
      tostring(report.bad_items), tostring(report.missing_index), tostring(report.stale_index),
      tostring(report.missing_expiry), tostring(report.stale_expiry)) or tostring(cmsg))
  end
  -- the whole database equals the model
  for k, it in pairs(model) do
    checked_items = checked_items + 1
    if not same(snap[k], it) then
      violation(cycle, "%s: expected %s, found %s", k, show(it), show(snap[k]))
    end
  end
  for k, it in pairs(snap) do
    if model[k] == nil then
      violation(cycle, "%s: found %s, which no operation wrote", k, show(it))
    end
  end
  if violations > before then
    failed_cycles = failed_cycles + 1
    model = snap
  end
  db:close()
end

if own_dir then os.execute("rm -rf " .. shq(dir)) end

print(string.format("crash loop: seed %d, %d kills, %d acknowledged operations checked, " ..
                    "%d interrupted operations checked for all-or-nothing (%d had committed), " ..
                    "%d item comparisons, %d index entries checked, %d change-log records " ..
                    "replayed, %d violations, %ds",
                    SEED, kills, acked, half_checked, applied_inflight, checked_items,
                    checked_index, checked_log, violations, os.time() - wall))
local _ = started
print(string.format("%d passed, %d failed", kills - failed_cycles, failed_cycles))
os.exit(failed_cycles == 0 and 0 or 1)
