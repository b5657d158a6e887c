-- quickstart.lua -- the first five minutes with dynafile (`make demo`).
--
-- Opens a database in a temporary directory, writes a few items, reads them
-- back by key, by partition and with a filter, updates one under a
-- condition, and checks every result.  Exits non-zero if anything is off.
local dynafile = require "dynafile"

local dir = os.tmpname() -- a fresh name; open creates the directory
os.remove(dir)

local db = assert(dynafile.open(dir, { pk = "PK", sk = "SK" }))

-- Items are Lua tables holding the key attributes.
assert(db:put_item { PK = "user#1", SK = "profile", name = "Bob", age = 42 })
assert(db:put_item { PK = "user#1", SK = "order#2024-01-07", total = 30.5 })
assert(db:put_item { PK = "user#1", SK = "order#2024-02-11", total = 12 })
assert(db:put_item { PK = "user#2", SK = "profile", name = "Amy", age = 35,
                     tags = { "admin", "beta" } })

-- Get by primary key.
local bob = db:get_item { PK = "user#1", SK = "profile" }
assert(bob.name == "Bob" and bob.age == 42)
print("get_item:", bob.name, bob.age)

-- A missing item is nil, not an error.
assert(db:get_item { PK = "user#9", SK = "profile" } == nil)

-- Query one partition in sort-key order, with a key condition.
local totals = {}
for order in db:query("user#1", { begins_with = "order#" }) do
  totals[#totals + 1] = order.total
  print("query:", order.SK, order.total)
end
assert(#totals == 2 and totals[1] == 30.5 and totals[2] == 12)

-- Newest first.
local newest = db:query_page("user#1", { begins_with = "order#", scan_index_forward = false,
                                         limit = 1 })
assert(#newest == 1 and newest[1].SK == "order#2024-02-11")

-- Scan everything with a filter string, evaluated in C on the stored bytes.
local admins = {}
for item in db:scan { filter = 'contains(tags, "admin") and age >= 30' } do
  admins[#admins + 1] = item.name
end
assert(#admins == 1 and admins[1] == "Amy")
print("scan:", admins[1])

-- Update in place; the condition guards against lost updates.
local new = assert(db:update_item({ PK = "user#1", SK = "profile" },
  { set = { age = 43 }, add = { logins = 1 } }, { condition = "age == 42" }))
assert(new.age == 43 and new.logins == 1)

-- A failed condition is an expected failure: nil, message, code.
local ok, msg, code = db:update_item({ PK = "user#1", SK = "profile" },
  { set = { age = 99 } }, { condition = "age == 42" })
assert(ok == nil and code == "ConditionalCheckFailed", msg)
assert(db:get_item({ PK = "user#1", SK = "profile" }).age == 43)
print("conditional update refused:", msg)

-- Delete; deleting again is not an error.
assert(db:delete_item { PK = "user#2", SK = "profile" })
assert(db:delete_item { PK = "user#2", SK = "profile" })
assert(db:get_item { PK = "user#2", SK = "profile" } == nil)

db:close()

-- Reopening without options uses the stored schema.
db = assert(dynafile.open(dir))
assert(db:schema().pk == "PK" and db:schema().sk == "SK")
assert(db:get_item({ PK = "user#1", SK = "profile" }).logins == 1)
db:close()

os.execute("rm -rf '" .. dir .. "'")
print("quickstart: ok")
