-- driver.lua -- the power-loss test: writers under the recorder
-- (plsim.so), a kill, crash images (plimage), and a check of each image.
--
--   lua5.4 driver.lua ROUNDS IMAGES [SEED]
--
-- Each round: a fresh database (the crash tests' schema: a GSI, an LSI,
-- TTL entries, the change log), flushed; 1 to 3 tests/crash/writer.lua
-- processes started on it with plsim.so preloaded, in one sync mode (the
-- rounds take the modes in turn); all killed with SIGKILL at one random
-- moment -- the power cut; IMAGES crash images built from what the disk
-- was asked to keep plus random subsets of the rest (image 0 keeps
-- nothing unflushed, image 1 everything).  Each image is then opened
-- (which recovers it) and checked:
--  - the STATIC items written before the writers started are all there,
--    unchanged (they live on the pages of the checkpoint recovery starts
--    from);
--  - it opens, db:check() finds nothing wrong, the GSI and LSI agree with
--    the items, and the change log has no gap and replays to exactly the
--    items: the commits that survived are a prefix of the commit order;
--  - for each writer, the items are its operations 1..k applied in order,
--    for some k (its prefix);
--  - sync "full": k covers every acknowledged operation;
--    sync "normal": k covers every operation acknowledged more than
--    PL_WINDOW_MS before the kill; "off": any prefix.
-- Half the images also get the dead processes' lock files, as a reboot
-- finds them.  Ends with "N passed, N failed", one per image.
--
-- Environment: PL_MODES (default "full normal off"), PL_MAX_MS (longest
-- run before the kill, default 1500), PL_WRITERS (most writers, default 3),
-- PL_WINDOW_MS (default 400: the 100 ms flush window of "normal" plus
-- slack for a busy machine), PL_BUILD (where plsim.so and plimage are,
-- default build/powerloss), LUA (default lua5.4), PL_KEEP=1 keeps the
-- work directory of a round with a failed image.
local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = here .. "/../crash/?.lua;" .. package.path
local check = require "check"
local system = require "system"

local ROUNDS = tonumber(arg[1]) or 3
local IMAGES = tonumber(arg[2]) or 6
local SEED = tonumber(arg[3]) or os.time()
local LUA = os.getenv("LUA") or "lua5.4"
local MAX_MS = tonumber(os.getenv("PL_MAX_MS") or "") or 1500
local MAX_WRITERS = tonumber(os.getenv("PL_WRITERS") or "") or 3
local WINDOW = (tonumber(os.getenv("PL_WINDOW_MS") or "") or 400) / 1000
local BUILD = os.getenv("PL_BUILD") or "build/powerloss"
local MODES = {}
for m in (os.getenv("PL_MODES") or "full normal off"):gmatch("%S+") do MODES[#MODES + 1] = m end
local WRITER = here .. "/../crash/writer.lua"
local STATIC = 3000 -- items written before the writers, never changed

math.randomseed(SEED)
local function shq(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
local function run(cmd)
  local ok = os.execute(cmd)
  return ok == true or ok == 0
end
local function abs(p)
  if p:sub(1, 1) == "/" then return p end
  local pwd = assert(io.popen("pwd")):read("l")
  return pwd .. "/" .. p
end
BUILD = abs(BUILD)
WRITER = abs(WRITER)

-- driver.lua check IMG MODE KILL_TIME WORKDIR WRITERS: check one image;
-- prints "OK lost N" or the violations, one a line.
local function check_image(img, mode, kill_time, work, nw)
  local bad = {}
  local function violation(fmt, ...)
    bad[#bad + 1] = "VIOLATION: " .. string.format(fmt, ...)
  end
  local writers = {}
  for w = 1, nw do
    local ops = check.parse(check.read_lines(work .. "/w" .. w))
    local last_acked, window_acked = 0, 0
    for i, op in ipairs(ops) do
      if op.outcome then
        last_acked = i
        if op.t and op.t < kill_time - WINDOW then window_acked = i end
      end
    end
    writers[w] = { ops = ops, prefix = "w" .. w .. ".", last_acked = last_acked,
                   window_acked = window_acked }
  end
  local lost = 0
  local ok, err = pcall(function()
    local db = check.open(img, mode)
    local snap = check.snapshot(db)
    check.check_indexes(db, snap, violation)
    check.check_log(db, {}, 0, snap, violation)
    local static = 0
    for k, it in pairs(snap) do
      local sk = k:match("^s%.p%d+/(%d+)$")
      if sk then
        static = static + 1
        if it.v ~= -tonumber(sk) then violation("%s: a static item changed", k) end
      elseif not k:match("^w%d+%.") then
        violation("%s: an item no writer wrote", k)
      end
    end
    if static ~= STATIC then
      violation("%d of the %d static items are there", static, STATIC)
    end
    for w, wr in ipairs(writers) do
      local found = check.prefixes(wr.ops, {}, snap, wr.prefix)
      local k = found[#found]
      if not k then
        violation("writer %d: its items are no prefix of its operations", w)
      else
        local need = mode == "full" and wr.last_acked or
                     mode == "normal" and wr.window_acked or 0
        if k < need then
          violation("writer %d: %d of its operations survived, but %d were acknowledged%s",
                    w, k, need, mode == "normal" and " before the flush window" or "")
        end
        lost = lost + math.max(0, wr.last_acked - k)
      end
    end
    db:close()
  end)
  if not ok then violation("%s", tostring(err)) end
  if #bad == 0 then
    print("OK lost " .. lost)
  else
    for _, line in ipairs(bad) do print(line) end
  end
  os.exit(#bad == 0 and 0 or 1)
end

if arg[1] == "check" then
  check_image(arg[2], arg[3], tonumber(arg[4]), arg[5], tonumber(arg[6]))
end

local passed, failed = 0, 0
local stats = {}
local function stat(mode, key, n)
  stats[mode] = stats[mode] or { rounds = 0, images = 0, failed = 0, acked = 0, lost = 0,
                                 recovered = 0 }
  stats[mode][key] = stats[mode][key] + (n or 1)
end

for round = 1, ROUNDS do
  local mode = MODES[(round - 1) % #MODES + 1]
  local work = os.tmpname()
  os.remove(work)
  local db_dir, jdir, idir = work .. "/db", work .. "/journal", work .. "/images"
  assert(run("mkdir -p " .. shq(db_dir) .. " " .. shq(jdir) .. " " .. shq(idir)))
  -- items written before the writers start and never touched again: they
  -- live on the pages of the checkpoint the writers start from, which a
  -- design that let those pages be reused would lose.  Written by another
  -- process: the change log hides a process's own records from it.
  assert(run(string.format("STATIC_DIR=%s %s -e %s", shq(db_dir), LUA, shq(string.format([[
    package.path = %q .. package.path
    local check = require "check"
    local db = assert(require("dynafile").open(os.getenv("STATIC_DIR"), check.schema(%q)))
    for b = 0, %d - 1, 500 do
      assert(db:batch_write(function(w)
        for i = b, math.min(b + 499, %d - 1) do
          w:put_item { PK = "s.p" .. (i %% 40), SK = i, v = -i, pad = string.rep("s", 100 + i %% 200) }
        end
      end))
    end
    db:close()]], here .. "/../crash/?.lua;", mode, STATIC, STATIC)))))
  -- what the writers first see must be on disk, as the recorder assumes
  run("cd " .. shq(db_dir) .. " && sync -d data.mdb; [ ! -f redo.log ] || sync -d redo.log")
  local nw = math.random(1, MAX_WRITERS)
  -- half the rounds checkpoint often (every 64 to 512 KiB), so that
  -- images fall between checkpoints, and on pages of old ones
  local ckpt = math.random() < 0.5 and math.random(64, 512) * 1024 or 0
  local script = {
    "export PLSIM_DIR=" .. shq(db_dir) .. " PLSIM_JOURNAL=" .. shq(jdir),
    ckpt > 0 and "export WRITER_CHECKPOINT_BYTES=" .. ckpt or "unset WRITER_CHECKPOINT_BYTES",
  }
  for w = 1, nw do
    script[#script + 1] = string.format(
      "LD_PRELOAD=%s %s %s %s %d %d %s w%d. >%s 2>&1 & p%d=$!", shq(BUILD .. "/plsim.so"), LUA,
      shq(WRITER), shq(db_dir), math.random(1, 2 ^ 30), w * 10000000, mode, w,
      shq(work .. "/w" .. w), w)
  end
  local pids = {}
  for w = 1, nw do pids[w] = "$p" .. w end
  local ms = math.random(MAX_MS // 5, MAX_MS)
  script[#script + 1] = string.format(
    "sleep %.3f; date +%%s.%%N >%s; kill -9 %s 2>/dev/null; wait", ms / 1000,
    shq(work .. "/killed"), table.concat(pids, " "))
  run("sh -c " .. shq(table.concat(script, "\n")))
  local kill_time = tonumber(check.read_lines(work .. "/killed")[1])
  stat(mode, "rounds")

  local acked = 0
  for w = 1, nw do
    local ops = check.parse(check.read_lines(work .. "/w" .. w))
    for _, op in ipairs(ops) do
      if op.outcome then acked = acked + 1 end
    end
  end
  stat(mode, "acked", acked)

  local plan = assert(io.popen(string.format("%s %s %s %s %d %d 2>&1; echo rc=$?",
    shq(BUILD .. "/plimage"), shq(jdir), shq(db_dir), shq(idir), math.random(1, 2 ^ 30),
    IMAGES)))
  local plan_text = plan:read("a")
  plan:close()
  local round_failed = false
  if not plan_text:match("rc=0%s*$") then
    io.stderr:write(string.format("round %d (%s): plimage failed:\n%s\n", round, mode, plan_text))
    failed = failed + IMAGES
    stat(mode, "failed", IMAGES)
    round_failed = true
  else
    for i = 0, IMAGES - 1 do
      local img = idir .. "/img" .. i
      if i % 2 == 1 then
        run("cp " .. shq(db_dir) .. "/*.lock " .. shq(db_dir) .. "/lock.mdb " .. shq(img) ..
            "/ 2>/dev/null")
      end
      -- in a process of its own: a corrupt image may make LMDB abort
      local p = assert(io.popen(string.format("%s %s check %s %s %s %s %d 2>&1; echo rc=$?",
        LUA, shq(arg[0]), shq(img), mode, string.format("%.6f", kill_time), shq(work), nw)))
      local out = p:read("a")
      p:close()
      local lost = tonumber(out:match("lost (%d+)")) or 0
      stat(mode, "lost", lost)
      stat(mode, "images")
      if out:match("^OK") and out:match("rc=0%s*$") then
        passed = passed + 1
      else
        failed = failed + 1
        stat(mode, "failed")
        round_failed = true
        local shown = 0
        for line in out:gmatch("[^\n]+") do
          if not line:match("^rc=") and shown < 5 then
            io.stderr:write(string.format("round %d (%s, %d writers) image %d: %s\n", round,
                                          mode, nw, i, line))
            shown = shown + 1
          end
        end
      end
    end
  end
  if round_failed and os.getenv("PL_KEEP") == "1" then
    io.stderr:write("kept " .. work .. "\n")
  else
    run("rm -rf " .. shq(work))
  end
end

local lines = {}
for _, mode in ipairs(MODES) do
  local s = stats[mode]
  if s then
    lines[#lines + 1] = string.format(
      "%s: %d rounds, %d images, %d failed; %d acknowledged operations, %d lost in images",
      mode, s.rounds, s.images, s.failed, s.acked, s.lost)
  end
end
print(string.format("power loss: seed %d, window %.0f ms; %s", SEED, WINDOW * 1000,
                    table.concat(lines, "; ")))
print(string.format("%d passed, %d failed", passed, failed))
os.exit(failed == 0 and 0 or 1)
