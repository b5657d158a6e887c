-- Several processes on one database: writer processes doing
-- read-modify-write increments in transactions while reader processes
-- scan, and reader slots left behind by processes killed with SIGKILL.
local dynafile = require "dynafile"
local fs = dofile("spec/support/fs.lua")
local procs = dofile("spec/support/procs.lua")

local WRITERS, READERS, INCREMENTS, COUNTERS = 4, 4, 150, 10

-- Writer: INCREMENTS transactions, each adding 1 to one counter and to
-- the total, together; prints how often it hit each counter.
local WRITER = [[
local dynafile = require "dynafile"
local dir, id, n, counters = arg[1], tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4])
local db = assert(dynafile.open(dir))
local hits = {}
for c = 1, counters do hits[c] = 0 end
for i = 1, n do
  local c = (id * 7 + i) % counters + 1
  assert(db:transaction(function(tx)
    local item = tx:get_item { PK = "ctr", SK = c } or { PK = "ctr", SK = c, n = 0 }
    local total = tx:get_item { PK = "total", SK = 0 } or { PK = "total", SK = 0, n = 0 }
    local v = item.n + 1
    -- the redundant fields must always agree: a torn item would show
    tx:put_item { PK = "ctr", SK = c, n = v, text = "n=" .. v, list = { v, v * 2, v * 3 } }
    tx:put_item { PK = "total", SK = 0, n = total.n + 1 }
    return true
  end))
  hits[c] = hits[c] + 1
end
print("hits " .. table.concat(hits, " "))
db:close()
]]

-- Reader: scans until the stop file appears; each scan reads all the
-- counters and the total in one page (one read transaction) and checks
-- that every item is whole and that the counters add up to the total.
local READER = [[
local dynafile = require "dynafile"
local dir, stop = arg[1], arg[2]
local db = assert(dynafile.open(dir))
local scans, bad, first_bad = 0, 0, nil
local function exists(p) local f = io.open(p) if f then f:close() return true end return false end
local function flag(msg) bad = bad + 1; first_bad = first_bad or msg end
repeat
  local sum, total = 0, 0
  local items = assert(db:scan_page { limit = 100 })
  for _, it in ipairs(items) do
    if it.PK == "ctr" then
      if it.text ~= "n=" .. it.n or #it.list ~= 3 or it.list[1] ~= it.n
          or it.list[3] ~= it.n * 3 then
        flag("torn item " .. tostring(it.SK))
      end
      sum = sum + it.n
    else
      total = it.n
    end
  end
  if sum ~= total then flag("sum " .. sum .. " ~= total " .. total) end
  scans = scans + 1
until exists(stop)
print("scans " .. scans .. " bad " .. bad .. " " .. tostring(first_bad))
db:close()
]]

-- Holder: opens the database, holds a read transaction (a reader slot)
-- and says so, then waits to be killed.
local HOLDER = [[
local dynafile = require "dynafile"
local db = assert(dynafile.open(arg[1]))
local txn = assert(db._c:read_txn())
io.stdout:write("holding\n")
io.stdout:flush()
os.execute("sleep 120")
print(txn)
]]

-- Prober: one read in a new process; prints ok or the failure.
local PROBE = [[
local dynafile = require "dynafile"
local db, msg, code = dynafile.open(arg[1])
if not db then print("open failed " .. tostring(code) .. " " .. tostring(msg)) return end
local item, err, ecode = db:get_item { PK = "k", SK = 1 }
if item then
  print("ok " .. item.v)
else
  print("failed " .. tostring(ecode) .. " " .. tostring(err))
end
]]

describe("several processes on one database", function()
  local dir, workers

  before_each(function()
    dir = fs.tmpdir()
    workers = {}
  end)

  after_each(function()
    for _, w in ipairs(workers) do
      procs.kill(w)
      procs.cleanup(w)
    end
    fs.cleanup()
  end)

  local function start(code, args)
    local w = procs.start(code, args)
    workers[#workers + 1] = w
    return w
  end

  it("keep every increment of four writers while four readers never see a torn state", function()
    local db = assert(dynafile.open(dir, { pk = "PK", sk = "SK" }))
    db:close()
    local stop = dir .. "/stop"
    local readers, writers = {}, {}
    for r = 1, READERS do readers[r] = start(READER, { dir, stop }) end
    for w = 1, WRITERS do
      writers[w] = start(WRITER, { dir, tostring(w), tostring(INCREMENTS), tostring(COUNTERS) })
    end
    local expected = {}
    for c = 1, COUNTERS do expected[c] = 0 end
    for w = 1, WRITERS do
      local status, out = procs.wait(writers[w], 300)
      assert.are.equal(0, status, out)
      local c = 0
      for h in out:match("hits ([%d ]+)"):gmatch("%d+") do
        c = c + 1
        expected[c] = expected[c] + tonumber(h)
      end
    end
    assert(io.open(stop, "w")):close()
    for r = 1, READERS do
      local status, out = procs.wait(readers[r], 60)
      assert.are.equal(0, status, out)
      local scans, bad = out:match("scans (%d+) bad (%d+)")
      assert.is_truthy(scans, out)
      assert.is_true(tonumber(scans) > 0)
      assert.are.equal("0", bad, out)
    end
    db = assert(dynafile.open(dir))
    for c = 1, COUNTERS do
      local item = db:get_item { PK = "ctr", SK = c }
      assert.are.equal(expected[c], item and item.n or 0)
    end
    assert.are.equal(WRITERS * INCREMENTS, db:get_item { PK = "total", SK = 0 }.n)
    db:close()
  end)

  -- A process that writes holds one slot for its checkpoint pin (see
  -- src/commit.c) and each handle one for reuse: 2 here, 3 holders.
  it("report a full reader table to a new process as ReadersFull, without waiting", function()
    local db = assert(dynafile.open(dir, { max_readers = 5 }))
    assert(db:put_item { PK = "k", SK = 1, v = 1 }) -- the pin's slot
    assert.are.equal(1, db:get_item { PK = "k", SK = 1 }.v) -- our slot
    for _ = 1, 3 do
      local h = start(HOLDER, { dir })
      assert.is_true(procs.wait_for(h, "holding", 60), procs.output(h))
    end
    local p = start(PROBE, { dir })
    local status, out = procs.wait(p, 60)
    assert.are.equal(0, status, out)
    assert.matches("^failed ReadersFull .*reader slot", out)
    db:close()
  end)

  it("reclaim the reader slots of processes killed while reading, in a running process", function()
    local db = assert(dynafile.open(dir, { max_readers = 5 }))
    assert(db:put_item { PK = "k", SK = 1, v = 2 })
    assert.are.equal(2, db:get_item { PK = "k", SK = 1 }.v) -- our cached slot
    local holders = {}
    for i = 1, 3 do
      holders[i] = start(HOLDER, { dir })
      assert.is_true(procs.wait_for(holders[i], "holding", 60), procs.output(holders[i]))
    end
    -- every slot is taken: a second handle cannot start a read
    local db2 = assert(dynafile.open(dir))
    local item, msg, code = db2:get_item { PK = "k", SK = 1 }
    assert.is_nil(item)
    assert.are.equal("ReadersFull", code, msg)
    for i = 1, 3 do procs.kill(holders[i]) end
    -- the dead processes' slots are found and reclaimed on the next try
    assert.are.equal(2, db2:get_item { PK = "k", SK = 1 }.v)
    assert(db2:put_item { PK = "k", SK = 1, v = 3 })
    assert.are.equal(3, db:get_item { PK = "k", SK = 1 }.v)
    db2:close()
    db:close()
  end)

  it("reclaim the reader slots of processes killed while reading, in a new process", function()
    -- this process keeps the database open (two slots: its pin and its
    -- cached reader), so the new one does not start with a fresh table
    local db = assert(dynafile.open(dir, { max_readers = 5 }))
    assert(db:put_item { PK = "k", SK = 1, v = 4 })
    assert.are.equal(4, db:get_item { PK = "k", SK = 1 }.v)
    local holders = {}
    for i = 1, 3 do
      holders[i] = start(HOLDER, { dir })
      assert.is_true(procs.wait_for(holders[i], "holding", 60), procs.output(holders[i]))
    end
    for i = 1, 3 do procs.kill(holders[i]) end
    local p = start(PROBE, { dir })
    local status, out = procs.wait(p, 60)
    assert.are.equal(0, status, out)
    assert.are.equal("ok 4\n", out)
    db:close()
  end)
end)
