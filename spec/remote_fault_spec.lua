-- The DynamoDB backend through a proxy on 127.0.0.1 that drops connections
-- (before and after forwarding), delays answers past the call's timeout,
-- and answers with throttling and 500 errors (before and after
-- forwarding): nothing acknowledged is lost, nothing is applied twice, and
-- every call returns within its timeout.
local dynafile = require "dynafile"
local dynalite = dofile("tests/js/dynalite.lua")
local socket = require "socket"

local pack = table.pack or function(...) return { n = select("#", ...), ... } end
local unpack = table.unpack or unpack -- luacheck: ignore 143

local TIMEOUT = 1.0
-- The proxy holds a delayed answer far past TIMEOUT (without blocking the
-- others), so a call that did not keep its deadline would take DELAY
-- seconds or more; a call that kept it takes about TIMEOUT, plus whatever
-- a busy machine adds by not running this process (SLACK: a niced test
-- run beside other work has been seen to take 2.5 s for a 1 s call).
local DELAY, SLACK = 30, 5
local FAULTS = "drop_before=0.06,drop_after=0.06,delay=0.02,throttle=0.12,e500=0.05,e500_after=0.05"

local function start_proxy(upstream, seed, counts)
  local p = assert(io.popen(string.format(
    "FAULT_DELAY=%d exec lua5.4 tests/remote/fault_proxy.lua %d %d '%s' '%s'",
    DELAY, upstream, seed, FAULTS, counts), "r"))
  local line = p:read("*l")
  local port, pid = (line or ""):match("^(%d+) (%d+)$")
  assert(port, "the proxy did not start: " .. tostring(line))
  return { port = tonumber(port), pid = tonumber(pid), pipe = p,
    stop = function(self)
      os.execute("kill " .. self.pid .. " 2>/dev/null")
      self.pipe:close()
    end }
end

describe("the DynamoDB backend under faults", function()
  local server, proxy
  local counts = os.tmpname()
  setup(function()
    server = assert(dynalite.start())
    proxy = start_proxy(server.port, 4242, counts)
  end)
  teardown(function()
    if proxy then proxy:stop() end
    if server then server:stop() end
    os.remove(counts)
  end)

  it("loses nothing acknowledged, applies nothing twice, and keeps every call in time", function()
    local name = "faults" .. os.time()
    local direct = assert(dynafile.open("dynamodb://" .. name,
      { endpoint = server.endpoint, region = "us-east-1" }))
    local db = assert(dynafile.open("dynamodb://" .. name, {
      endpoint = "http://127.0.0.1:" .. proxy.port, region = "us-east-1", timeout = TIMEOUT,
    }))
    local longest = 0
    local function timed(f, ...)
      local t0 = socket.gettime()
      local r = pack(f(...))
      longest = math.max(longest, socket.gettime() - t0)
      return unpack(r, 1, r.n)
    end
    local acked, added, unknown_adds, cond_acked = {}, 0, 0, {}
    local outcomes = {}
    local function note(code) outcomes[code] = (outcomes[code] or 0) + 1 end
    local DEFINITE = { Timeout = true, Throttled = true, ServerError = true, IOError = true }
    for i = 1, 100 do
      -- an unconditional put: idempotent, so retried through every fault
      local ok, _, code = timed(db.put_item, db, { PK = "put", SK = tostring(i), v = i })
      if ok then acked[#acked + 1] = tostring(i) else
        note(code)
        assert.is_true(DEFINITE[code] or false, "put: unexpected code " .. tostring(code))
      end
      -- a counter: not idempotent; a lost answer is UnknownOutcome
      local new
      new, _, code = timed(db.update_item, db, { PK = "counter", SK = "c" }, { add = { n = 1 } })
      if new then added = added + 1 elseif code == "UnknownOutcome" then
        unknown_adds = unknown_adds + 1
      else
        note(code)
        assert.is_true(DEFINITE[code] or false, "add: unexpected code " .. tostring(code))
      end
      -- a conditional put of a new item: never ConditionalCheckFailed,
      -- even when a first attempt was applied and its answer lost
      ok, _, code = timed(db.put_item, db, { PK = "cond", SK = tostring(i) },
        { condition = "not exists(PK)" })
      if ok then cond_acked[#cond_acked + 1] = tostring(i) else
        note(code)
        assert.are_not.equal("ConditionalCheckFailed", code)
      end
    end
    -- a batch past one chunk
    local batch_ok = timed(db.batch_write, db, function(w)
      for i = 1, 40 do w:put_item({ PK = "batch", SK = tostring(i) }) end
    end)
    assert.is_true(longest < TIMEOUT + SLACK, "a call took " .. longest .. " s")
    for _, sk in ipairs(acked) do
      assert.is_table(direct:get_item({ PK = "put", SK = sk }),
        "acknowledged put " .. sk .. " lost")
    end
    for _, sk in ipairs(cond_acked) do
      assert.is_table(direct:get_item({ PK = "cond", SK = sk }),
        "acknowledged put " .. sk .. " lost")
    end
    if batch_ok then assert.equal(40, #direct:query_page("batch")) end
    local c = direct:get_item({ PK = "counter", SK = "c" })
    local n = c and c.n or 0
    assert.is_true(n >= added, string.format("counter %d < %d acknowledged adds", n, added))
    assert.is_true(n <= added + unknown_adds, string.format(
      "counter %d > %d acknowledged + %d unknown adds: an add was applied twice", n, added,
      unknown_adds))
    -- the faults really happened
    local seen = {}
    for line in io.lines(counts) do
      local k, v = line:match("^(%S+) (%d+)$")
      seen[k] = tonumber(v)
    end
    for _, f in ipairs { "drop_before", "drop_after", "delay", "throttle", "e500", "e500_after" } do
      assert.is_true((seen[f] or 0) > 0, "fault " .. f .. " never happened")
    end
    assert.is_true(#acked > 60 and added > 50, "too few calls succeeded")
    if os.getenv("FAULT_REPORT") then
      print(string.format("\nputs %d acked, adds %d acked + %d unknown, counter %d, "
        .. "conditional puts %d acked, longest call %.2f s", #acked, added, unknown_adds, n,
        #cond_acked, longest))
    end
    db:close()
    direct:close()
  end)
end)
