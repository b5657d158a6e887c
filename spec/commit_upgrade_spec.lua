-- Databases written before the redo log (format 1, tests/fixtures/v1/,
-- and format 2, tests/fixtures/v2/, made by the releases before it):
-- refused by a read-only open, which writes nothing, and upgraded in place
-- by the first writable one -- a redo log beside them,
-- the stored format raised so that the release before refuses them --
-- and every item there before is there after, exactly as that release's
-- `dynafile export` listed it.
local dynafile = require "dynafile"
local core = require "dynafile.core"

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local function sorted_lines(s)
  local t = {}
  for l in s:gmatch("[^\n]+") do t[#t + 1] = l end
  table.sort(t)
  return t
end

-- `dynafile export DIR`, run with this build (the module and the CLI of
-- the working tree); its lines, sorted.
local function export(dir, args)
  local out = os.tmpname()
  -- Lua 5.4 and its build, whichever Lua runs the spec: the fixtures'
  -- exports were written by 5.4, and other Lua versions print some
  -- numbers differently
  local cmd = string.format(
    'LUA_PATH=%q LUA_CPATH=%q lua5.4 bin/dynafile export %s %s >%s 2>/dev/null',
    package.path, "./build/lua5.4/?.so;;", q(dir), args or "", out)
  assert(os.execute(cmd))
  local s = slurp(out)
  os.remove(out)
  return sorted_lines(s)
end

-- The schema record as stored (mdb_dump of the meta sub-database).
local function stored_format(dir)
  local p = assert(io.popen("mdb_dump -s meta " .. q(dir) .. " 2>/dev/null"))
  local dump = p:read("*a")
  p:close()
  local want, take = " " .. ("schema"):gsub(".", function(c)
    return string.format("%02x", c:byte())
  end), false
  for line in dump:gmatch("[^\n]+") do
    if take then
      local raw = line:sub(2):gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end)
      return core.decode(raw).format
    end
    if line == want then take = true end
  end
end

describe("a database written before the redo log", function()
  local dir
  before_each(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. q(dir)))
  end)
  after_each(function() os.execute("rm -rf " .. q(dir)) end)

  for _, f in ipairs { { 1, "main" }, { 1, "kv" }, { 2, "main" }, { 2, "kv" } } do
    local format, name = f[1], f[2] .. " of format " .. f[1]
    local fixture = "tests/fixtures/v" .. format .. "/" .. f[2]
    local expected = sorted_lines(slurp(fixture .. ".expected.jsonl"))
    -- (main holds a number too small for DynamoDB JSON, which this
    -- release's export refuses to write: its plain export is compared)
    local expected_ddb = f[2] == "kv" and sorted_lines(slurp(fixture .. ".expected.ddb.jsonl"))

    it("is refused by a read-only open, which writes nothing (" .. name .. ")", function()
      assert(os.execute("cp -r " .. q(fixture) .. " " .. q(dir) .. "/db"))
      local before = slurp(dir .. "/db/data.mdb")
      local db, msg, code = dynafile.open(dir .. "/db", { readonly = true })
      assert.is_nil(db)
      assert.equal("VersionMismatch", code)
      assert.matches("open it once without readonly", msg, 1, true)
      assert.is_false(exists(dir .. "/db/redo.log"))
      assert.equal(before, slurp(dir .. "/db/data.mdb"))
      assert.equal(format, stored_format(dir .. "/db"))
    end)

    it("is upgraded in place by the first writable open, losing nothing (" .. name .. ")",
       function()
      assert(os.execute("cp -r " .. q(fixture) .. " " .. q(dir) .. "/db"))
      local db = assert(dynafile.open(dir .. "/db"))
      local r = db:check()
      assert.is_true(r.ok)
      assert.is_true(r.recovery.log_created)
      assert.is_false(r.recovery.recovered)
      db:close()
      assert.is_true(exists(dir .. "/db/redo.log"))
      assert.equal(core.format, stored_format(dir .. "/db"))
      assert.same(expected, export(dir .. "/db"))
      if expected_ddb then
        assert.same(expected_ddb, export(dir .. "/db", "--format dynamodb"))
      end
      -- upgraded once: the next open finds the log
      db = assert(dynafile.open(dir .. "/db"))
      r = db:check()
      assert.is_false(r.recovery.log_created)
      assert.is_true(r.ok)
      -- and it takes writes through the log like any other
      assert(db:put_item(f[2] == "main" and { PK = "new", SK = "item" } or { id = "new" }))
      db:close()
      db = assert(dynafile.open(dir .. "/db"))
      assert.is_true(db:check().ok)
      assert.equal(#expected + 1, (function()
        local n = 0
        for _ in db:scan() do n = n + 1 end
        return n
      end)())
      db:close()
    end)
  end
end)
