-- Parallel scan segments: `segment = k, segments = n` is the hash range
-- [(k-1)*2^64/n, k*2^64/n) of the partition hash, so the n segments are
-- disjoint, cover every item, are roughly balanced, keep each partition
-- whole, and can be scanned from different processes.
local dynafile = require "dynafile"

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  return p .. "-segment"
end

local function rmdir(p)
  os.execute("rm -rf '" .. p .. "'")
end

-- The interpreter running these specs, to start other processes with.
local function interpreter()
  if rawget(_G, "jit") then return "luajit" end
  return "lua" .. _VERSION:match("%d+%.%d+")
end

local N = 10000
-- Balance tolerance: every segment holds within 20% of N/n items.  With
-- 10,000 partitions spread by a 64-bit hash, a segment's count has a
-- standard deviation of at most 50 items (n = 2) and 24 items (n = 16),
-- so 20% is more than five standard deviations for every n tested.
local TOLERANCE = 0.20

describe("scan segments", function()
  local dir, db

  setup(function()
    dir = tmpdir()
    db = assert(dynafile.open(dir, { pk = "PK", sk = "SK" }))
    db:batch_write(function(w)
      for i = 1, N do w:put_item({ PK = "user#" .. i, SK = 0, i = i }) end
    end)
  end)

  teardown(function()
    db:close()
    rmdir(dir)
  end)

  for _, n in ipairs({ 1, 2, 7, 16 }) do
    it("splits 10,000 items into " .. n .. " disjoint, covering, balanced segments", function()
      local owner = {}
      local total = 0
      for k = 1, n do
        local count = 0
        for item in db:scan({ segment = k, segments = n }) do
          assert.is_nil(owner[item.i], "item in two segments")
          owner[item.i] = k
          count = count + 1
        end
        total = total + count
        local expect = N / n
        assert.truthy(math.abs(count - expect) <= TOLERANCE * expect,
          string.format("segment %d of %d holds %d items, expected %.0f +- %d%%", k, n, count,
            expect,
            TOLERANCE * 100))
      end
      assert.equal(N, total)
      for i = 1, N do assert.truthy(owner[i], "item " .. i .. " in no segment") end
    end)
  end

  it("pages through one segment without leaving it", function()
    local inside = {}
    for item in db:scan({ segment = 3, segments = 7 }) do inside[item.i] = true end
    local got, nk = 0, nil
    repeat
      local items
      items, nk = db:scan_page({ segment = 3, segments = 7, limit = 97, start_after = nk })
      for _, item in ipairs(items) do
        assert.truthy(inside[item.i])
        inside[item.i] = nil
        got = got + 1
      end
    until nk == nil
    assert.is_nil(next(inside))
    assert.truthy(got > 0)
  end)

  it("combines segments with a filter and a limit", function()
    local all = 0
    for k = 1, 4 do
      for item in db:scan({ segment = k, segments = 4, filter = "i <= 100" }) do
        assert.truthy(item.i <= 100)
        all = all + 1
      end
    end
    assert.equal(100, all)
    local n = 0
    for _ in db:scan({ segment = 2, segments = 4, limit = 5 }) do n = n + 1 end
    assert.equal(5, n)
  end)

  it("keeps every partition whole inside one segment", function()
    local pdir = tmpdir()
    local pdb = assert(dynafile.open(pdir, { pk = "PK", sk = "SK" }))
    pdb:batch_write(function(w)
      for p = 1, 50 do
        for s = 1, 20 do w:put_item({ PK = "p" .. p, SK = s }) end
      end
    end)
    local seg_of = {}
    local total = 0
    for k = 1, 7 do
      for item in pdb:scan({ segment = k, segments = 7 }) do
        assert.truthy(seg_of[item.PK] == nil or seg_of[item.PK] == k)
        seg_of[item.PK] = k
        total = total + 1
      end
    end
    assert.equal(1000, total)
    pdb:close()
    rmdir(pdir)
  end)

  it("scans each segment from its own process, all at once", function()
    local n = 4
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write([[
local dynafile = require "dynafile"
local dir, k, n = arg[1], tonumber(arg[2]), tonumber(arg[3])
local db = assert(dynafile.open(dir))
local out = {}
for item in db:scan({ segment = k, segments = n }) do out[#out + 1] = item.i end
db:close()
io.write(table.concat(out, "\n"), "\n")
]])
    f:close()
    local env = string.format("LUA_PATH='%s' LUA_CPATH='%s' ", package.path, package.cpath)
    local outs, errs, rcs, cmd = {}, {}, {}, {}
    for k = 1, n do
      outs[k], errs[k], rcs[k] = os.tmpname(), os.tmpname(), os.tmpname()
      cmd[#cmd + 1] = string.format("(%s%s '%s' '%s' %d %d > '%s' 2> '%s'; echo $? > '%s') &",
        env, interpreter(), script, dir, k, n, outs[k], errs[k], rcs[k])
    end
    assert.truthy(os.execute("( " .. table.concat(cmd, " ") .. " wait )"))
    local function slurp(path)
      local fh = io.open(path, "rb")
      local s = fh and fh:read("*a") or "(no file)"
      if fh then fh:close() end
      os.remove(path)
      return s
    end
    local owner, total = {}, 0
    for k = 1, n do
      local mine = {}
      for item in db:scan({ segment = k, segments = n }) do mine[#mine + 1] = item.i end
      local out, err, rc = slurp(outs[k]), slurp(errs[k]), slurp(rcs[k])
      assert.are.equal("0\n", rc, "segment process " .. k .. " exited " .. rc .. ": " .. err)
      local theirs = {}
      for line in out:gmatch("[^\n]+") do theirs[#theirs + 1] = tonumber(line) end
      assert.same(mine, theirs)
      for _, i in ipairs(theirs) do
        assert.is_nil(owner[i])
        owner[i] = k
        total = total + 1
      end
    end
    os.remove(script)
    assert.equal(N, total)
  end)

  it("raises on a segment outside 1..segments and on half a pair", function()
    assert.error_matches(function() db:scan({ segment = 0, segments = 4 }) end,
      "segment must be a positive integer")
    assert.error_matches(function() db:scan({ segment = 5, segments = 4 }) end,
      "segment must be in 1..segments")
    assert.error_matches(function() db:scan({ segment = 1.5, segments = 4 }) end,
      "segment must be a positive integer")
    assert.error_matches(function() db:scan({ segment = 1, segments = 0 }) end,
      "segments must be a positive integer")
    assert.error_matches(function() db:scan({ segments = 4 }) end,
      "segment and segments go together")
    assert.error_matches(function() db:scan({ segment = 1, segments = 5000 }) end,
      "segments must be at most 4096")
  end)
end)
