-- fill.lua -- fills the disk under a database and checks what happens
-- (run by tests/diskfull.sh on a small filesystem, or under a file-size
-- limit).
--
--   lua5.4 fill.lua DIR [BALLAST]
--
-- 1. Puts 4 KB items (sync = "full") until one is refused; it must be
--    refused with nil, message, "IOError".
-- 2. Goes on with a mix of puts, updates, deletes, batches and
--    transactions: each must succeed or fail with "IOError"; a failed one
--    must change nothing (the whole database is compared with a model of
--    what was acknowledged).
-- 3. Closes and reopens the database: everything acknowledged is there.
-- 4. With BALLAST (a file on the same filesystem), removes it: writes work
--    again.
-- Prints one "ok"/"FAIL" line per check and "N passed, N failed" last.
local dynafile = require "dynafile"

local dir, ballast = arg[1], arg[2]
local pass, fail = 0, 0
local function check(ok, what, detail)
  if ok then
    pass = pass + 1
    print("ok    " .. what)
  else
    fail = fail + 1
    print("FAIL  " .. what .. (detail and (": " .. tostring(detail)) or ""))
  end
  return ok
end

local model, acked = {}, 0
local PAD = string.rep("p", 4000)

local function same_as_model(db)
  local n = 0
  for it in db:scan() do
    n = n + 1
    local m = model[it.PK .. "/" .. it.SK]
    if not m or m.v ~= it.v or m.n ~= it.n then
      return false, string.format("%s/%s holds v=%s n=%s, expected %s", it.PK, it.SK,
        tostring(it.v), tostring(it.n), m and ("v=" .. m.v) or "nothing")
    end
  end
  local want = 0
  for _ in pairs(model) do want = want + 1 end
  if n ~= want then return false, string.format("%d items, expected %d", n, want) end
  return true
end

local db = assert(dynafile.open(dir, { pk = "PK", sk = "SK", sync = "full",
                                       gsi = { by_v = { pk = "g", sk = "v" } } }))

-- 1. fill
local i, refused = 0, nil
while i < 100000 do
  i = i + 1
  local ok, msg, code = db:put_item { PK = "p" .. (i % 50), SK = i, v = i, g = "g", pad = PAD }
  if ok then
    model["p" .. (i % 50) .. "/" .. i] = { v = i }
    acked = acked + 1
  else
    refused = { msg = msg, code = code }
    break
  end
end
check(refused ~= nil, "the disk fills up after " .. acked .. " acknowledged puts of 4 KB")
if not refused then
  print(pass .. " passed, " .. fail .. " failed")
  os.exit(1)
end
check(refused.code == "IOError", "the refused put returns code IOError", refused.code)
check(type(refused.msg) == "string" and
      (refused.msg:find("no space left", 1, true) or refused.msg:find("file-size limit", 1, true)),
      "the refused put says why: " .. tostring(refused.msg))
check(same_as_model(db), "every acknowledged put is there after the refusal",
      select(2, same_as_model(db)))

-- 2. more writes on the full disk
local ok_writes, io_errors, bad = 0, 0, {}
local function attempt(what, f, apply)
  local res = { pcall(f) }
  if res[1] and res[2] then
    ok_writes = ok_writes + 1
    apply()
  elseif res[1] and res[2] == nil and res[4] == "IOError" then
    io_errors = io_errors + 1
  else
    bad[#bad + 1] = string.format("%s: %s %s %s", what, tostring(res[2]), tostring(res[3]),
                                  tostring(res[4]))
  end
  local same, why = same_as_model(db)
  if not same then
    bad[#bad + 1] = what .. ": database differs from the acknowledged writes: " .. why
  end
end

for r = 1, 40 do
  local k = (r * 7919) % i + 1
  local pk, sk = "p" .. (k % 50), k
  local key = pk .. "/" .. sk
  local kind = r % 5
  if kind == 0 then
    local big = string.rep("b", 20000)
    attempt("put", function()
      return db:put_item { PK = "new", SK = r, v = -r, g = "g", pad = big }
    end,
      function() model["new/" .. r] = { v = -r } end)
  elseif kind == 1 and model[key] then
    attempt("update", function()
      return db:update_item({ PK = pk, SK = sk }, { set = { v = -k, pad2 = PAD }, add = { n = 1 } })
    end, function() model[key] = { v = -k, n = (model[key].n or 0) + 1 } end)
  elseif kind == 2 then
    attempt("delete", function() return db:delete_item { PK = pk, SK = sk } end,
      function() model[key] = nil end)
  elseif kind == 3 then
    attempt("transaction", function()
      return db:transaction(function(tx)
        for j = 1, 10 do tx:put_item { PK = "tx", SK = r * 100 + j, v = r, g = "g", pad = PAD } end
        return true
      end)
    end, function() for j = 1, 10 do model["tx/" .. (r * 100 + j)] = { v = r } end end)
  else
    attempt("batch", function()
      return db:batch_write(function(w)
        for j = 1, 10 do w:put_item { PK = "b", SK = r * 100 + j, v = r, g = "g", pad = PAD } end
      end)
    end, function() for j = 1, 10 do model["b/" .. (r * 100 + j)] = { v = r } end end)
  end
end
check(#bad == 0, string.format("40 more writes on the full disk: %d acknowledged, %d IOError, " ..
  "none half done", ok_writes, io_errors), table.concat(bad, "; "))
check(io_errors > 0, "the full disk kept refusing writes", io_errors)

-- the index agrees with the items
local n_index = 0
for _ in db:query("g", { index = "by_v" }) do n_index = n_index + 1 end
local n_items = 0
for _ in pairs(model) do n_items = n_items + 1 end
check(n_index == n_items, "the index holds exactly the acknowledged items",
      n_index .. " entries for " .. n_items .. " items")

-- 3. reopen
db:close()
local db2, msg, code = dynafile.open(dir)
check(db2 ~= nil, "the database reopens on the full disk", tostring(msg) .. " " .. tostring(code))
if db2 then
  db = db2
  local same, why = same_as_model(db)
  check(same, "after reopening, everything acknowledged is there and nothing else", why)
end

-- 4. free space
if ballast and db2 then
  os.remove(ballast)
  local ok2, m2, c2 = db:put_item { PK = "after", SK = 1, v = 1, g = "g", pad = PAD }
  check(ok2 == true, "with space freed, writes work again", tostring(m2) .. " " .. tostring(c2))
  if ok2 then model["after/1"] = { v = 1 } end
  check(same_as_model(db), "and the database holds what was acknowledged",
        select(2, same_as_model(db)))
end
if db2 then db:close() end
print(pass .. " passed, " .. fail .. " failed")
os.exit(fail == 0 and 0 or 1)
