-- dynafile copy SRC DST between a local database, a DynamoDB table
-- (dynalite on 127.0.0.1) and a DynamoDB JSON file: lossless, parallel,
-- resumable, with a report.
local dynafile = require "dynafile"
local dynalite = dofile("tests/js/dynalite.lua")

-- Run a command: its output, and whether it exited 0 (read from the
-- output: Lua 5.1 does not give a pipe's exit status).
local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"exit=$?\"")
  local out = p:read("*a")
  p:close()
  local code = out:match("exit=(%d+)%s*$")
  return out:gsub("exit=%d+%s*$", ""), code == "0"
end

local CLI = "LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./build/lua5.4/?.so;;' "
  .. "lua5.4 bin/dynafile"

local function all_items(db)
  local out = {}
  for it in db:scan() do out[#out + 1] = it end
  table.sort(out, function(a, b) return a.PK .. "\0" .. a.SK < b.PK .. "\0" .. b.SK end)
  return out
end

describe("dynafile copy", function()
  local server, dir
  setup(function()
    server = assert(dynalite.start())
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
  end)
  teardown(function()
    if server then server:stop() end
    os.execute("rm -rf " .. dir)
  end)

  local function copy(src, dst, extra)
    local out, ok = sh(string.format("%s copy '%s' '%s' --endpoint %s --region us-east-1 %s", CLI,
      src, dst, server.endpoint, extra or ""))
    local report = out:match("({[^\n]*})%s*$")
    return ok, report and require("cjson").decode(report), out
  end

  it("copies a local database to DynamoDB, to a file, and back, item for item", function()
    local src = dir .. "/src"
    local db = assert(dynafile.open(src, { pk = "PK", sk = "SK",
      gsi = { by_t = { pk = "t", sk = "SK" } } }))
    assert(db:batch_write(function(w)
      for i = 1, 300 do
        w:put_item({ PK = "p" .. (i % 17), SK = string.format("s%04d", i), t = "x" .. (i % 3),
          n = i, f = i / 7, l = { i, "a", dynafile.null }, m = { k = { true } },
          e = dynafile.array {} })
      end
    end))
    local want = all_items(db)
    db:close()
    local ok, r, out = copy(src, "dynamodb://copy_a")
    assert.is_true(ok, out)
    assert.equal(300, r.copied)
    local remote = assert(dynafile.open("dynamodb://copy_a", { endpoint = server.endpoint,
      region = "us-east-1" }))
    assert.same(want, all_items(remote))
    assert.equal("gsi", remote:schema().indexes.by_t.kind)
    remote:close()
    ok, r, out = copy("dynamodb://copy_a", dir .. "/a.jsonl")
    assert.is_true(ok, out)
    assert.equal(300, r.copied)
    ok, r, out = copy(dir .. "/a.jsonl", dir .. "/back")
    assert.is_true(ok, out)
    assert.equal(300, r.copied)
    local back = assert(dynafile.open(dir .. "/back"))
    assert.same(want, all_items(back))
    back:close()
    ok, r, out = copy("dynamodb://copy_a", dir .. "/par", "--segments 3")
    assert.is_true(ok, out)
    assert.equal(300, r.copied)
    assert.equal(3, #r.segments)
    local par = assert(dynafile.open(dir .. "/par"))
    assert.same(want, all_items(par))
    assert.equal("gsi", par:schema().indexes.by_t.kind)
    par:close()
  end)

  it("keeps every DynamoDB type exactly, through a file", function()
    local a = assert(dynafile.open("dynamodb://copy_types", { endpoint = server.endpoint,
      region = "us-east-1" }))
    local item = { PK = "t", SK = "1",
      d = dynafile.decimal("-1.2345678901234567890123456789012345678e-100"),
      big = dynafile.decimal("99999999999999999999999999999999999999"),
      b = dynafile.binary("\0\255"),
      ss = dynafile.set { "x", "y" }, ns = dynafile.set { 1, dynafile.decimal("0.1") },
      bs = dynafile.set { dynafile.binary("z") }, l = dynafile.array {}, m = {}, s = "" }
    assert(a:put_item(item))
    a:close()
    local ok, _, out = copy("dynamodb://copy_types", dir .. "/types.jsonl")
    assert.is_true(ok, out)
    ok, _, out = copy(dir .. "/types.jsonl", "dynamodb://copy_types2")
    assert.is_true(ok, out)
    local b = assert(dynafile.open("dynamodb://copy_types2", { endpoint = server.endpoint,
      region = "us-east-1" }))
    local got = b:get_item({ PK = "t", SK = "1" })
    local ddbjson = require "dynafile.ddbjson"
    assert.same(ddbjson.encode_item(item), ddbjson.encode_item(got))
    b:close()
  end)

  it("resumes each segment after the last key its state file records", function()
    local src = dir .. "/rsrc"
    local db = assert(dynafile.open(src, { pk = "PK", sk = "SK" }))
    assert(db:batch_write(function(w)
      for i = 1, 50 do w:put_item({ PK = "p", SK = string.format("%03d", i) }) end
    end))
    db:close()
    -- a state file as an interrupted run leaves it: 20 items copied
    local state = dir .. "/state"
    local f = assert(io.open(state .. ".1", "w"))
    f:write('{"copied":20,"done":false,"after":{"PK":{"S":"p"},"SK":{"S":"020"}}}')
    f:close()
    local ok, r, out = copy(src, dir .. "/rdst", "--state " .. state)
    assert.is_true(ok, out)
    assert.equal(50, r.copied) -- 20 before, 30 now
    local d = assert(dynafile.open(dir .. "/rdst"))
    local items = all_items(d)
    assert.equal(30, #items)
    assert.equal("021", items[1].SK)
    d:close()
    assert.is_nil(io.open(state .. ".1")) -- a finished copy removes its state
  end)

  it("goes on after being killed, and loses nothing", function()
    local src = dir .. "/ksrc"
    local db = assert(dynafile.open(src, { pk = "PK", sk = "SK" }))
    assert(db:batch_write(function(w)
      for i = 1, 2000 do
        w:put_item({ PK = "k" .. (i % 50), SK = string.format("%05d", i), v = i })
      end
    end))
    local want = all_items(db)
    db:close()
    local state = dir .. "/kstate"
    -- start, wait for the first state file, kill the whole process group
    os.execute(string.format("(setsid sh -c \"%s copy '%s' dynamodb://copy_k --endpoint %s "
      .. "--region us-east-1 --state %s --segments 2 >/dev/null 2>&1\" & echo $! > %s/pid) ",
      CLI:gsub('"', '\\"'), src, server.endpoint, state, dir))
    for _ = 1, 200 do
      local s = io.open(state .. ".1") or io.open(state .. ".2")
      if s then s:close() break end
      os.execute("sleep 0.05")
    end
    local pid = io.open(dir .. "/pid"):read("*l")
    os.execute("kill -9 -" .. pid .. " 2>/dev/null")
    local ok, r, out = copy(src, "dynamodb://copy_k", "--state " .. state .. " --segments 2")
    assert.is_true(ok, out)
    assert.equal(2000, r.copied)
    local remote = assert(dynafile.open("dynamodb://copy_k", { endpoint = server.endpoint,
      region = "us-east-1" }))
    assert.same(want, all_items(remote))
    remote:close()
  end)

  it("says what is wrong with its arguments", function()
    local out, ok = sh(CLI .. " copy a.jsonl b.jsonl")
    assert.is_false(ok)
    assert.matches("one of SRC and DST must be a database or a table", out)
    out, ok = sh(CLI .. " copy " .. dir .. "/nothing-here " .. dir .. "/x")
    assert.is_false(ok)
    assert.matches("no dynafile database here", out)
  end)
end)
