-- driver.lua -- the crash loop: run 1 to 3 tests/crash/writer.lua
-- processes at once on one database, kill them all with SIGKILL at a
-- random moment, reopen the database and check it; over and over, each
-- cycle in one of the three sync modes in turn.
--
--   lua5.4 driver.lua KILLS [SEED]
--
-- Environment: LUA (interpreter for the writers, default lua5.4),
-- CRASH_MAX_MS (longest time before a kill, default 250), CRASH_DIR
-- (database directory; default a fresh temporary one, removed at the end),
-- CRASH_WRITERS (most writers per cycle, default 3), CRASH_MODES (default
-- "full normal off").
--
-- The driver keeps a model of the database: for every key, the item the
-- acknowledged operations left there ({v, n, g, m}); each writer has its
-- own partitions.  After each kill -- a crash of processes, not of the
-- machine, so in every sync mode:
--  - every operation acknowledged before the kill must be in the database
--    (the model, updated with them, must equal a full scan exactly);
--  - the operation each writer was running when the kill came (started,
--    not acknowledged) must be applied entirely or not at all -- its
--    items, e.g. all N items of a transaction with one marker value, are
--    either all in their new state or all in their old one;
--  - nothing else is in the database;
--  - every index agrees with the items (a GSI, an LSI, and db:check()
--    over every index and TTL expiry entry);
--  - the change log has no gap, and replaying it gives the items.
-- It prints the counts and ends with "N passed, N failed" (one check per
-- kill); the exit status is 1 when any check failed.
--
-- CRASH_TAMPER=1 checks the checker: after each kill the driver itself
-- deletes one acknowledged item, or rewrites one item of an interrupted
-- multi-item operation, before checking; every cycle must then fail.
local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path
local check = require "check"

local KILLS = tonumber(arg[1]) or 200
local SEED = tonumber(arg[2]) or os.time()
local LUA = os.getenv("LUA") or "lua5.4"
local MAX_MS = tonumber(os.getenv("CRASH_MAX_MS") or "") or 250
local MAX_WRITERS = tonumber(os.getenv("CRASH_WRITERS") or "") or 3
local MODES = {}
for m in (os.getenv("CRASH_MODES") or "full normal off"):gmatch("%S+") do MODES[#MODES + 1] = m end
local WRITER = here .. "/writer.lua"
local TAMPER = os.getenv("CRASH_TAMPER") == "1"

math.randomseed(SEED)

local dir = os.getenv("CRASH_DIR")
local own_dir = false
if not dir or dir == "" then
  dir = os.tmpname()
  os.remove(dir)
  own_dir = true
end
local outdir = os.tmpname()
os.remove(outdir)
os.execute("mkdir -p '" .. outdir .. "'")

local function shq(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
local same, show, apply = check.same, check.show, check.apply

-- create the database before the first kill
assert(require("dynafile").open(dir, check.schema("full"))):close()

local model = {} -- key -> item, as the acknowledged operations left it
local kills, acked, checked_items, violations, failed_cycles = 0, 0, 0, 0, 0
local half_checked, applied_inflight, checked_index, checked_log = 0, 0, 0, 0
local by_mode, by_writers = {}, {}
local log_state, log_seq = {}, 0 -- items as the change log tells them
local wall = os.time()

for cycle = 1, KILLS do
  local cycle_violations = violations
  local function violation(fmt, ...)
    violations = violations + 1
    io.stderr:write(string.format("cycle %d: VIOLATION: " .. fmt .. "\n", cycle, ...))
  end
  local mode = MODES[(cycle - 1) % #MODES + 1]
  local nw = math.random(1, MAX_WRITERS)
  by_mode[mode] = (by_mode[mode] or 0) + 1
  by_writers[nw] = (by_writers[nw] or 0) + 1
  -- start the writers together, kill them together
  local script = {}
  for w = 1, nw do
    script[#script + 1] = string.format("%s %s %s %d %d %s %s >%s 2>&1 & p%d=$!", LUA,
      shq(WRITER), shq(dir), math.random(1, 2 ^ 30), cycle * 1000000 + w * 100000, mode,
      "w" .. w .. ".", shq(outdir .. "/w" .. w), w)
  end
  local pids = {}
  for w = 1, nw do pids[w] = "$p" .. w end
  script[#script + 1] = string.format("sleep %.3f; kill -9 %s 2>/dev/null; wait",
                                      math.random(5, MAX_MS) / 1000, table.concat(pids, " "))
  os.execute("sh -c " .. shq(table.concat(script, "\n")))
  kills = kills + 1

  local inflight = {}
  for w = 1, nw do
    local ops = check.parse(check.read_lines(outdir .. "/w" .. w))
    if ops.stray then violation("writer %d printed: %s", w, ops.stray) end
    for i, op in ipairs(ops) do
      if op.outcome then
        if op.outcome == "ok" then apply(model, op) end
        acked = acked + 1
      elseif i == #ops then
        inflight[#inflight + 1] = op
      else
        violation("writer %d: operation %d has no outcome but is not its last", w, op.id)
      end
    end
    os.remove(outdir .. "/w" .. w)
  end

  local db = check.open(dir, mode)
  if TAMPER then
    local victim
    for _, op in ipairs(inflight) do
      if not victim and #op.effects > 1 and math.random() < 0.5 then
        -- make the interrupted operation half applied, whichever way it went
        local e = op.effects[1]
        if db:get_item { PK = e.pk, SK = e.sk } then
          assert(db:delete_item { PK = e.pk, SK = e.sk })
        else
          assert(db:put_item { PK = e.pk, SK = e.sk, v = -1 })
        end
        victim = true
      end
    end
    if not victim then
      local ks = {}
      for k in pairs(model) do ks[#ks + 1] = k end
      table.sort(ks)
      if #ks > 0 then
        local pk, sk = ks[math.random(#ks)]:match("^(.*)/(%d+)$")
        assert(db:delete_item { PK = pk, SK = tonumber(sk) })
      else
        assert(db:put_item { PK = "w1.p0", SK = 0, v = -1 })
      end
    end
  end
  local snap = check.snapshot(db)
  -- each interrupted operation: all of it or none of it
  for _, op in ipairs(inflight) do
    local after = {}
    for k, v in pairs(model) do after[k] = v end
    apply(after, op)
    local keys = check.touched(op)
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
      violation("operation %d (%s) is half applied:\n  %s", op.id, op.kind,
                table.concat(detail, "\n  "))
    end
  end
  checked_index = checked_index + check.check_indexes(db, snap, violation)
  local n_log
  log_state, log_seq, n_log = check.check_log(db, log_state, log_seq, snap, violation)
  checked_log = checked_log + n_log
  -- the whole database equals the model
  for k, it in pairs(model) do
    checked_items = checked_items + 1
    if not same(snap[k], it) then
      violation("%s: expected %s, found %s", k, show(it), show(snap[k]))
    end
  end
  for k, it in pairs(snap) do
    if model[k] == nil then
      violation("%s: found %s, which no operation wrote", k, show(it))
    end
  end
  if violations > cycle_violations then
    failed_cycles = failed_cycles + 1
    model = snap -- go on from what is there
  end
  db:close()
end

if own_dir then os.execute("rm -rf " .. shq(dir)) end
os.execute("rm -rf " .. shq(outdir))

local function counts(t)
  local keys, parts = {}, {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do parts[#parts + 1] = tostring(k) .. ": " .. t[k] end
  return table.concat(parts, ", ")
end
print(string.format("crash loop: seed %d, %d kills (sync %s; writers %s), %d acknowledged " ..
                    "operations checked, %d interrupted operations checked for " ..
                    "all-or-nothing (%d had committed), %d item comparisons, %d index " ..
                    "entries checked, %d change-log records replayed, %d violations, %ds",
                    SEED, kills, counts(by_mode), counts(by_writers), acked, half_checked,
                    applied_inflight, checked_items, checked_index, checked_log, violations,
                    os.time() - wall))
print(string.format("%d passed, %d failed", kills - failed_cycles, failed_cycles))
os.exit(failed_cycles == 0 and 0 or 1)
