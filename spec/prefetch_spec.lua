-- The open option `prefetch`: the first open of a directory in a process
-- asks the kernel to read the data file ahead in the background -- by
-- default up to 256 MiB, up to the bytes given, or nothing with false.
--
-- The data file is dropped from the page cache with dd's iflag=nocache
-- and its resident bytes read with fincore (util-linux).  The database
-- lives under build/, not /tmp, which may be a tmpfs whose pages cannot be
-- dropped; where the cache cannot be emptied or observed, only the opens
-- and the data are checked (said on stderr).
local dynafile = require "dynafile"

local ITEMS, BLOB = 3000, 1000

local dir = string.format("build/spec-prefetch-%d-%d", os.time(), math.random(1, 1e9))
local data = dir .. "/data.mdb"

local function sh(cmd)
  local ok = os.execute(cmd)
  return ok == true or ok == 0
end

-- the data file's bytes in the page cache, or nil when fincore fails
local function resident()
  local p = io.popen("fincore --bytes --noheadings --output RES '" .. data .. "' 2>/dev/null")
  local out = p:read("*a")
  p:close()
  return tonumber(out:match("%d+"))
end

local function drop()
  sh("dd if='" .. data .. "' iflag=nocache count=0 status=none 2>/dev/null")
end

-- the bytes of the data file in use (the file itself is allocated ahead
-- of them; the read-ahead covers the pages in use)
local used

local function file_size()
  return used
end

-- Wait up to 10 s for at least `bytes` of the file to be cached.
local function wait_resident(bytes)
  for _ = 1, 500 do
    local r = resident()
    if r and r >= bytes then return r end
    sh("sleep 0.02")
  end
  return resident()
end

local function open_with(prefetch)
  local db = assert(dynafile.open(dir, { prefetch = prefetch }))
  -- the data is right whatever the option
  local item = assert(db:get_item({ PK = "p", SK = string.format("%06d", ITEMS) }))
  assert.equal(BLOB, #item.v)
  return db
end

-- Drop the file from the cache, open, and judge the residency with
-- `check()`; up to three times: a page-cache drop by another program
-- of the machine (drop_caches) during an attempt must not fail the test,
-- while a read-ahead that never happens fails every attempt.
local function attempts(prefetch, check)
  local ok
  for _ = 1, 3 do
    drop()
    local db = open_with(prefetch)
    ok = check()
    db:close()
    if ok then break end
  end
  return ok
end

describe("the open option prefetch", function()
  local can_drop

  setup(function()
    local db = assert(dynafile.open(dir))
    local blob = string.rep("x", BLOB)
    local w = db:batch_writer()
    for i = 1, ITEMS do w:put_item({ PK = "p", SK = string.format("%06d", i), v = blob }) end
    w:close()
    used = db:stat().used_bytes
    db:close()
    drop()
    can_drop = resident() == 0
    if not can_drop then
      io.stderr:write("prefetch_spec: the page cache cannot be emptied or observed for "
        .. data .. " here (tmpfs, or no fincore): only the opens are checked\n")
    end
  end)

  teardown(function()
    sh("rm -rf '" .. dir .. "'")
  end)

  it("reads the whole data file in by default", function()
    if not can_drop then return open_with(nil):close() end
    local want = math.floor(file_size() * 0.9)
    assert.is_true(attempts(nil, function() return wait_resident(want) >= want end))
  end)

  it("reads nothing ahead when false", function()
    drop()
    local db = open_with(false)
    if can_drop then
      sh("sleep 0.3")
      -- the open reads the meta pages, the schema and the pages of one get
      assert.is_true(resident() < 256 * 1024)
    end
    db:close()
  end)

  it("reads about the bytes given", function()
    if not can_drop then return open_with(256 * 1024):close() end
    local half = file_size() / 2
    assert.is_true(attempts(256 * 1024, function()
      if wait_resident(256 * 1024) < 256 * 1024 then return false end
      sh("sleep 0.3")
      return resident() < half
    end))
  end)

  it("is false or a positive integer, else dynafile.open raises naming it", function()
    for _, bad in ipairs({ true, 0, -1, 1.5, "1024", math.huge, {} }) do
      local ok, err = pcall(dynafile.open, dir, { prefetch = bad })
      assert.is_false(ok)
      assert.matches("dynafile.open: prefetch must be false or a positive integer (bytes)",
        err, 1, true)
    end
  end)
end)
