-- Torn files and hostile directories: opening what is not a healthy
-- dynafile database returns nil, a message and a code ("Corrupt", or
-- "VersionMismatch" for a newer format), and never crashes or writes into
-- what it does not own.  (An LMDB file crafted to attack the reader is a
-- different matter: LMDB trusts its B-tree pages; see the README.)
local dynafile = require "dynafile"
local core = require "dynafile.core"

local function shq(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  return d
end

local function rm(d) os.execute("rm -rf " .. shq(d)) end

local function sh(cmd)
  local ok = os.execute(cmd)
  return ok == true or ok == 0
end

local function write(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local function size(path)
  local f = assert(io.open(path, "rb"))
  local n = f:seek("end")
  f:close()
  return n
end

local function random_bytes(n, seed)
  math.randomseed(seed)
  local t = {}
  for i = 1, n do t[i] = string.char(math.random(0, 255)) end
  return table.concat(t)
end

-- A healthy database with a few items, closed; returns the bytes of
-- data.mdb in use (the file is allocated ahead of them, so is larger).
local function make_db(dir, n)
  local db = assert(dynafile.open(dir, { pk = "PK", sk = "SK" }))
  for i = 1, n or 50 do
    assert(db:put_item { PK = "p" .. (i % 5), SK = i, pad = string.rep("x", 200) })
  end
  local used = db:stat().used_bytes
  db:close()
  return used
end

-- LMDB's tools write behind the redo log's back, and the next recovery
-- would put the data file back as of the log's last checkpoint: a file
-- they changed is looked at as one of a release before the log, alone.
local function without_log(dir)
  os.remove(dir .. "/redo.log")
  os.remove(dir .. "/redo.lock")
end

local function count(db)
  local n = 0
  for _ in db:scan() do n = n + 1 end
  return n
end

-- Assert that opening dir fails cleanly with `want` as code.
local function refused(dir, want, opts)
  local db, msg, code = dynafile.open(dir, opts)
  if db then db:close() end
  assert.is_nil(db)
  assert.equal("string", type(msg))
  assert.truthy(#msg > 0)
  assert.equal(want, code)
  return msg
end

-- LMDB's own tools (lmdb-utils) write environments "of another program".
local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function unhex(s)
  return (s:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end))
end

-- mdb_load a list of {key, value} into sub-database `sub` (nil: main).
local function mdb_load(dir, sub, pairs_)
  local f = os.tmpname()
  local lines = { "VERSION=3", "format=bytevalue", "type=btree", "HEADER=END" }
  for _, kv in ipairs(pairs_) do
    lines[#lines + 1] = " " .. hex(kv[1])
    lines[#lines + 1] = " " .. hex(kv[2])
  end
  lines[#lines + 1] = "DATA=END"
  write(f, table.concat(lines, "\n") .. "\n")
  local ok = sh(string.format("mdb_load -f %s %s %s >/dev/null 2>&1", shq(f),
                              sub and ("-s " .. shq(sub)) or "", shq(dir)))
  os.remove(f)
  assert(ok, "mdb_load failed")
end

-- The value stored under `key` in sub-database `sub`, via mdb_dump.
local function mdb_get(dir, sub, key)
  local p = assert(io.popen(string.format("mdb_dump -s %s %s 2>/dev/null", shq(sub), shq(dir))))
  local out = p:read("*a")
  p:close()
  local want, take = " " .. hex(key), false
  for line in out:gmatch("[^\n]+") do
    if take then return unhex(line:sub(2)) end
    if line == want then take = true end
  end
  return nil
end

describe("opening a hostile directory", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() rm(dir) end)

  it("refuses a zero-length data.mdb as Corrupt", function()
    assert(sh("mkdir -p " .. shq(dir)))
    write(dir .. "/data.mdb", "")
    local msg = refused(dir, "Corrupt")
    assert.truthy(msg:find("truncated", 1, true))
    assert.equal(0, size(dir .. "/data.mdb")) -- not initialised over
  end)

  it("refuses a data.mdb cut inside its meta pages as Corrupt", function()
    make_db(dir)
    local bytes = read(dir .. "/data.mdb")
    write(dir .. "/data.mdb", bytes:sub(1, 5000))
    refused(dir, "Corrupt")
  end)

  it("refuses a data.mdb cut after its meta pages, shorter than its last page, as Corrupt",
     function()
    local used = make_db(dir, 400)
    local bytes = read(dir .. "/data.mdb")
    assert.truthy(used > 16 * 4096)
    local cuts = { 2 * 4096, 3 * 4096, 3 * 4096 + 100, math.floor(used / 2), used - 4096 }
    for _, n in ipairs(cuts) do
      write(dir .. "/data.mdb", bytes:sub(1, n))
      refused(dir, "Corrupt")
      refused(dir, "Corrupt", { readonly = true })
    end
    -- the whole file again: everything is there
    write(dir .. "/data.mdb", bytes)
    local db = assert(dynafile.open(dir))
    assert.equal(400, count(db))
    db:close()
  end)

  it("refuses a data.mdb of random bytes as Corrupt", function()
    assert(sh("mkdir -p " .. shq(dir)))
    for seed = 1, 5 do
      write(dir .. "/data.mdb", random_bytes(3 * 4096 + seed * 100, seed))
      refused(dir, "Corrupt")
      os.remove(dir .. "/lock.mdb")
    end
  end)

  it("refuses a data.mdb whose meta pages were overwritten with random bytes as Corrupt", function()
    make_db(dir)
    local bytes = read(dir .. "/data.mdb")
    write(dir .. "/data.mdb", random_bytes(2 * 4096, 7) .. bytes:sub(2 * 4096 + 1))
    refused(dir, "Corrupt")
    without_log(dir)
    refused(dir, "Corrupt")
  end)

  it("refuses a data.mdb that does not belong to the redo log beside it, changing nothing",
     function()
    make_db(dir)
    local other = dir .. "-other"
    make_db(other, 80)
    -- another database's data file, copied over this one's
    assert(sh("cp " .. shq(other .. "/data.mdb") .. " " .. shq(dir .. "/data.mdb")))
    local before = read(dir .. "/data.mdb")
    local msg = refused(dir, "Corrupt")
    assert.truthy(msg:find("does not belong", 1, true))
    assert.equal(before, read(dir .. "/data.mdb"))
    rm(other)
  end)

  it("refuses a data.mdb that is a text file of another program as Corrupt", function()
    assert(sh("mkdir -p " .. shq(dir)))
    write(dir .. "/data.mdb", string.rep("hello, this is not a database\n", 1000))
    refused(dir, "Corrupt")
  end)

  it("refuses a data.mdb that is a directory as Corrupt, with a message", function()
    assert(sh("mkdir -p " .. shq(dir .. "/data.mdb")))
    for _, opts in ipairs { {}, { readonly = true } } do
      local db, msg, code = dynafile.open(dir, opts)
      assert.is_nil(db)
      assert.equal("string", type(msg))
      assert.equal("Corrupt", code)
      assert.truthy(msg:find("data.mdb", 1, true), msg)
    end
  end)

  it("refuses a non-empty directory of another program as Corrupt and writes nothing there",
     function()
    assert(sh("mkdir -p " .. shq(dir)))
    write(dir .. "/notes.txt", "mine")
    local msg = refused(dir, "Corrupt")
    assert.truthy(msg:find("not empty", 1, true))
    local p = io.popen("ls -A " .. shq(dir))
    local listing = p:read("*a")
    p:close()
    assert.equal("notes.txt\n", listing)
  end)

  it("refuses an LMDB environment of another program as Corrupt", function()
    assert(sh("mkdir -p " .. shq(dir)))
    mdb_load(dir, nil, { { "config", "some value" }, { "other", "thing" } })
    local before = read(dir .. "/data.mdb")
    refused(dir, "Corrupt")
    refused(dir, "Corrupt", { readonly = true })
    assert.equal(before, read(dir .. "/data.mdb"))
  end)

  it("refuses an LMDB environment of another program with named sub-databases as Corrupt",
     function()
    assert(sh("mkdir -p " .. shq(dir)))
    mdb_load(dir, "users", { { "alice", "1" } })
    refused(dir, "Corrupt")
  end)

  it("refuses an LMDB environment of another program that has a sub-database named meta", function()
    assert(sh("mkdir -p " .. shq(dir)))
    mdb_load(dir, "meta", { { "owner", "someone else" } })
    local before = read(dir .. "/data.mdb")
    refused(dir, "Corrupt")
    assert.equal(before, read(dir .. "/data.mdb"))
  end)

  it("refuses a stored schema record that is not MessagePack as Corrupt", function()
    make_db(dir)
    mdb_load(dir, "meta", { { "schema", "\193\193 garbage" } })
    without_log(dir)
    refused(dir, "Corrupt")
  end)

  it("refuses a stored schema of a newer format version as VersionMismatch", function()
    make_db(dir)
    local raw = assert(mdb_get(dir, "meta", "schema"))
    local schema = core.decode(raw)
    assert.equal(core.format, schema.format)
    schema.format = 99
    local h = assert(core.open(dir, {}))
    local newer = h:encode(schema)
    h:close()
    mdb_load(dir, "meta", { { "schema", newer } })
    without_log(dir)
    local msg = refused(dir, "VersionMismatch")
    assert.truthy(msg:find("99", 1, true))
    refused(dir, "VersionMismatch", { readonly = true })
    -- the record was not rewritten
    assert.equal(newer, mdb_get(dir, "meta", "schema"))
  end)

  it("opens a database whose lock.mdb was overwritten with random bytes", function()
    make_db(dir)
    write(dir .. "/lock.mdb", random_bytes(8192, 3))
    local db, msg, code = dynafile.open(dir)
    if db then
      assert.equal(50, count(db))
      db:close()
    else
      assert.equal("string", type(msg))
      assert.truthy(code == "Corrupt" or code == "VersionMismatch")
    end
  end)

  it("opens a database whose meta.json is garbage, reading the schema from the database", function()
    make_db(dir)
    write(dir .. "/meta.json", "{{{ not json")
    local db = assert(dynafile.open(dir))
    assert.equal("PK", db:schema().pk)
    assert.equal(50, count(db))
    db:close()
  end)

  it("refuses a path that is a file with IOError", function()
    write(dir, "a file")
    local db, msg, code = dynafile.open(dir)
    assert.is_nil(db)
    assert.truthy(msg:find("not a directory", 1, true))
    assert.equal("IOError", code)
    os.remove(dir)
  end)

  it("keeps a healthy database intact after every refused open of its copies", function()
    make_db(dir)
    local db = assert(dynafile.open(dir))
    assert.equal(50, count(db))
    db:close()
  end)
end)
