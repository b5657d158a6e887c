-- check.lua -- what the crash tests check after a crash, shared by the
-- SIGKILL loop (tests/crash/driver.lua) and the power-loss simulator's
-- driver (tests/powerloss/driver.lua).
--
-- Items are modelled as key -> {v, n, g, m} (key = PK .. "/" .. SK), the
-- attributes writer.lua's operations set.  An operation is what a
-- writer's output says: its id, kind, effects and outcome ("ok", "cond",
-- or nil when the process died before the call returned) and, for an
-- acknowledged one, the time of the acknowledgement.
local M = {}

local dynafile = require "dynafile"

function M.keyof(pk, sk) return pk .. "/" .. sk end
local keyof = M.keyof

local function copy(it)
  if not it then return nil end
  return { v = it.v, n = it.n, g = it.g, m = it.m }
end
M.copy = copy

function M.same(a, b)
  if a == nil or b == nil then return a == b end
  return a.v == b.v and a.n == b.n and a.g == b.g and a.m == b.m
end
local same = M.same

function M.show(it)
  if not it then return "absent" end
  return string.format("{v=%s n=%s g=%s m=%s}", tostring(it.v), tostring(it.n),
                       tostring(it.g), tostring(it.m))
end

-- The schema of the crash tests' databases: a sparse GSI on g (a third
-- of the items have none), an LSI on v, a TTL attribute no item ever
-- expires by (so every item also has an expiry entry to keep in step),
-- and the change log, keeping many more records than a test writes.
M.LOG_KEEP = 200000
function M.schema(sync)
  return {
    pk = "PK", sk = "SK", ttl = "ttl", sync = sync or "full",
    stream = { keep = M.LOG_KEEP },
    gsi = { by_g = { pk = "g", sk = "v" } },
    lsi = { by_v = { sk = "v" } },
  }
end

-- Apply op's effects to state (key -> item).
function M.apply(state, op)
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
local apply = M.apply

-- The keys an operation touches, each once.
function M.touched(op)
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

-- Parse one writer's output into its operations, in order.  ops.ready:
-- the writer had opened the database; ops.stray: anything unexpected it
-- printed (an error message).
function M.parse(lines)
  local ops, by_id = {}, {}
  for _, line in ipairs(lines) do
    local w = {}
    for x in line:gmatch("%S+") do w[#w + 1] = x end
    if w[1] == "READY" then
      ops.ready = true
    elseif w[1] == "B" and tonumber(w[2]) then
      local op = { id = tonumber(w[2]), kind = w[3], effects = {} }
      ops[#ops + 1] = op
      by_id[op.id] = op
    elseif w[1] == "E" and by_id[tonumber(w[2])] and tonumber(w[4]) and
        (w[5] == "put" and #w == 8 or w[5] == "upd" and #w == 6 or w[5] == "del" and #w == 5) then
      local op = by_id[tonumber(w[2])]
      local e = { pk = w[3], sk = tonumber(w[4]), kind = w[5] }
      if e.kind == "put" then
        e.v = tonumber(w[6])
        e.g = w[7] ~= "-" and w[7] or nil
        e.m = w[8] ~= "-" and tonumber(w[8]) or nil
      elseif e.kind == "upd" then
        e.v = tonumber(w[6])
      end
      op.effects[#op.effects + 1] = e
    elseif w[1] == "A" and by_id[tonumber(w[2])] and w[3] then
      local op = by_id[tonumber(w[2])]
      op.outcome = w[3]
      op.t = tonumber(w[4])
    elseif line ~= "" then
      ops.stray = (ops.stray or "") .. line .. "\n"
    end
  end
  return ops
end

-- The complete lines of a file (a last line without its newline was cut
-- by the kill, so the writer never finished saying it).
function M.read_lines(path)
  local lines = {}
  local f = io.open(path, "rb")
  if not f then return lines end
  local text = f:read("a")
  f:close()
  for line in text:gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  return lines
end

-- Every item of the database: key -> {v, n, g, m}, and the count.
function M.snapshot(db)
  local s, count = {}, 0
  for it in db:scan() do
    s[keyof(it.PK, it.SK)] = { v = it.v, n = it.n, g = it.g, m = it.m }
    count = count + 1
  end
  return s, count
end

-- The indexes agree with the items: the GSI holds exactly the items with
-- a g, in order; the LSI holds every item of each partition; db:check()
-- finds no missing or stale index or expiry entry and no bad item.
-- Returns the number of index entries read.
function M.check_indexes(db, snap, violation)
  local by_g, by_pk, n_entries = {}, {}, 0
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
        violation("index by_g: entry %s/%s does not match its item", it.PK, it.SK)
      end
      if last and it.v < last then violation("index by_g: %s out of order", name) end
      last = it.v
    end
    n_entries = n_entries + n
    if n ~= (by_g[name] or 0) then
      violation("index by_g: %d entries for %s, %d items have it", n, name, by_g[name] or 0)
    end
  end
  for pk, count in pairs(by_pk) do
    local n = 0
    for _ in db:query(pk, { index = "by_v" }) do n = n + 1 end
    n_entries = n_entries + n
    if n ~= count then
      violation("index by_v: %d entries in %s, %d items", n, pk, count)
    end
  end
  local report, cmsg = db:check()
  if not report or not report.ok then
    violation("db:check() reports problems: %s", report and string.format(
      "bad_items %s missing_index %s stale_index %s missing_expiry %s stale_expiry %s",
      tostring(report.bad_items), tostring(report.missing_index), tostring(report.stale_index),
      tostring(report.missing_expiry), tostring(report.stale_expiry)) or tostring(cmsg))
  end
  return n_entries
end

-- The change log: read the records after `log_seq`, check that their
-- sequence numbers follow each other without a gap, and that replaying
-- them onto `log_state` (the items as of log_seq) gives exactly `snap`.
-- Returns the new log_state (a copy of snap), log_seq and the number of
-- records read.
function M.check_log(db, log_state, log_seq, snap, violation)
  local read = 0
  while true do
    local evs, nxt, first = db._c:stream_read(log_seq, 256)
    if not evs then
      violation("change log unreadable: %s", tostring(nxt))
      break
    end
    if #evs > 0 and first > log_seq + 1 then
      violation("change log starts at %d: records after %d were trimmed", first, log_seq)
    end
    for _, ev in ipairs(evs) do
      if ev.seq ~= log_seq + 1 then
        violation("change log: record %d follows %d", ev.seq, log_seq)
      end
      log_seq = ev.seq
      read = read + 1
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
      violation("change log replay: %s is %s, the items say %s", k,
                M.show(log_state[k]), M.show(it))
    end
  end
  for k, it in pairs(log_state) do
    if snap[k] == nil then
      violation("change log replay: %s is %s, but there is no such item", k, M.show(it))
    end
  end
  local new_state = {}
  for k, it in pairs(snap) do new_state[k] = it end
  return new_state, log_seq, read
end

-- The prefixes of one writer's operations that `snap` can be: the
-- numbers k such that applying its operations 1..k in order (those
-- acknowledged "ok", and an unacknowledged last one) onto `base` gives
-- exactly the items of snap under that writer's partitions (`prefix`).
-- An operation refused by its condition writes nothing; an
-- unacknowledged one may have committed or not, so it counts both ways.
-- Returns the list of matching k, ascending (k = 0: none applied).
function M.prefixes(ops, base, snap, prefix)
  local function mine(k) return k:sub(1, #prefix) == prefix end
  local model, mismatched, n_mis = {}, {}, 0
  for k, it in pairs(base) do if mine(k) then model[k] = it end end
  local function mark(k)
    local bad = not same(model[k], snap[k])
    if bad and not mismatched[k] then
      mismatched[k] = true
      n_mis = n_mis + 1
    elseif not bad and mismatched[k] then
      mismatched[k] = nil
      n_mis = n_mis - 1
    end
  end
  for k in pairs(model) do mark(k) end
  for k in pairs(snap) do if mine(k) then mark(k) end end
  local found = {}
  if n_mis == 0 then found[#found + 1] = 0 end
  for i, op in ipairs(ops) do
    if op.outcome == "ok" or op.outcome == nil then
      apply(model, op)
      for _, k in ipairs(M.touched(op)) do mark(k) end
    end
    if n_mis == 0 then found[#found + 1] = i end
  end
  return found
end

-- Open a database for checking; raises with the message on failure.
function M.open(dir, sync)
  local db, msg, code = dynafile.open(dir, { sync = sync or "full" })
  if not db then error("open failed: " .. tostring(msg) .. " (" .. tostring(code) .. ")", 0) end
  return db
end

return M
