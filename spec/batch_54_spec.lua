-- The batch writer as a to-be-closed variable (Lua 5.4 only).
local dynafile = require "dynafile"

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  return p
end

local function rmdir(p)
  os.execute("rm -rf '" .. p .. "'")
end

describe("a batch writer in a <close> variable", function()
  local dir, db

  before_each(function()
    dir = tmpdir()
    db = assert(dynafile.open(dir, { pk = "PK", sk = "SK" }))
  end)

  after_each(function()
    db:close()
    rmdir(dir)
  end)

  it("commits when the scope ends normally", function()
    do
      local w <close> = db:batch_writer()
      w:put_item { PK = "a", SK = 1 }
      w:put_item { PK = "b", SK = 1 }
      assert.is_nil(db:get_item { PK = "a", SK = 1 })
    end
    assert.is_not_nil(db:get_item { PK = "a", SK = 1 })
    assert.is_not_nil(db:get_item { PK = "b", SK = 1 })
  end)

  it("commits when the scope is left by return or break", function()
    local function f()
      local w <close> = db:batch_writer()
      w:put_item { PK = "r", SK = 1 }
      return "returned"
    end
    assert.equal("returned", f())
    for i = 1, 3 do
      local w <close> = db:batch_writer()
      w:put_item { PK = "loop", SK = i }
      if i == 2 then break end
    end
    assert.is_not_nil(db:get_item { PK = "r", SK = 1 })
    assert.is_not_nil(db:get_item { PK = "loop", SK = 2 })
    assert.is_nil(db:get_item { PK = "loop", SK = 3 })
  end)

  it("discards what is queued when the scope ends by an error", function()
    local ok, err = pcall(function()
      local w <close> = db:batch_writer()
      w:put_item { PK = "a", SK = 1 }
      error("abandon", 0)
    end)
    assert.is_false(ok)
    assert.equal("abandon", err)
    assert.is_nil(db:get_item { PK = "a", SK = 1 })
  end)

  it("keeps what an earlier flush committed when the scope then fails", function()
    pcall(function()
      local w <close> = db:batch_writer()
      w:put_item { PK = "a", SK = 1 }
      assert(w:flush())
      w:put_item { PK = "b", SK = 1 }
      error("later")
    end)
    assert.is_not_nil(db:get_item { PK = "a", SK = 1 })
    assert.is_nil(db:get_item { PK = "b", SK = 1 })
  end)

  it("does nothing more at scope end after an explicit close", function()
    do
      local w <close> = db:batch_writer()
      w:put_item { PK = "a", SK = 1 }
      assert.is_true(w:close())
      assert.is_not_nil(db:get_item { PK = "a", SK = 1 })
    end
  end)

  it("raises at scope end when the commit cannot happen", function()
    local ok, err = pcall(function()
      db:transaction(function()
        local w <close> = db:batch_writer()
        w:put_item { PK = "a", SK = 1 }
      end)
    end)
    assert.is_false(ok)
    assert.matches("the write transaction of this database is held", err, 1, true)
    assert.is_nil(db:get_item { PK = "a", SK = 1 })
  end)
end)
