-- single_table.lua -- one table, many entity types, access patterns served
-- by secondary indexes: DynamoDB's single-table design.
--
-- Customers, their orders and the products on each order all live in one
-- table with generic key attributes PK and SK:
--
--   PK              SK              attributes
--   CUSTOMER#c1     PROFILE         name, email
--   CUSTOMER#c1     ORDER#o1001     status, date, total   (the customer's order)
--   ORDER#o1001     PRODUCT#p42     qty, price            (a line of the order)
--
-- Two global secondary indexes add the access patterns the keys alone
-- cannot serve:
--   * "inverted": PK and SK swapped (pk = SK, sk = PK), the adjacency-list
--     pattern: which orders hold a product, who placed an order, every
--     customer.
--   * "by_status": pk = status, sk = date, a sparse index: only orders carry
--     a status, so profiles and order lines are not in it at all.  It
--     projects `total` only, so its entries stay small.
-- Indexes are updated in the same transaction as the item: a query on an
-- index right after a write sees it (stronger than DynamoDB's eventually
-- consistent GSIs).
local dynafile = require "dynafile"

local dir = os.tmpname()
os.remove(dir)

local db = assert(dynafile.open(dir, {
  pk = "PK", sk = "SK",
  gsi = {
    inverted = { pk = "SK", sk = "PK", projection = "all" },
    by_status = { pk = "status", sk = "date", projection = { "total" } },
  },
}))

-- Collect one attribute of every item an iterator yields.
local function collect(attr, iter, state, ctl, closing)
  local out = {}
  for item in iter, state, ctl, closing do out[#out + 1] = item[attr] end
  return out
end

local function same_list(got, want)
  local msg = "got {" .. table.concat(got, ", ") .. "}, want {" .. table.concat(want, ", ") .. "}"
  assert(#got == #want, msg)
  for i = 1, #want do assert(got[i] == want[i], msg) end
end

-- The data: three customers, four orders, their lines, in one batch.
assert(db:batch_write(function(w)
  w:put_item { PK = "CUSTOMER#c1", SK = "PROFILE", name = "Ada", email = "ada@example.com" }
  w:put_item { PK = "CUSTOMER#c2", SK = "PROFILE", name = "Ben", email = "ben@example.com" }
  w:put_item { PK = "CUSTOMER#c3", SK = "PROFILE", name = "Cy", email = "cy@example.com" }
  local orders = {
    { "c1", "o1001", "2024-03-02", "SHIPPED", { p42 = 2, p7 = 1 } },
    { "c1", "o1004", "2024-03-09", "PENDING", { p42 = 1 } },
    { "c2", "o1002", "2024-03-04", "PENDING", { p7 = 3, p9 = 1 } },
    { "c3", "o1003", "2024-03-05", "PENDING", { p9 = 5 } },
  }
  local price = { p42 = 19.5, p7 = 4.25, p9 = 100 }
  for _, o in ipairs(orders) do
    local customer, id, date, status, lines = o[1], o[2], o[3], o[4], o[5]
    local total = 0
    for product, qty in pairs(lines) do
      w:put_item { PK = "ORDER#" .. id, SK = "PRODUCT#" .. product, qty = qty,
                   price = price[product] }
      total = total + qty * price[product]
    end
    w:put_item { PK = "CUSTOMER#" .. customer, SK = "ORDER#" .. id, date = date,
                 status = status, total = total }
  end
end))

-- 1. A customer's profile: get by key.
assert(db:get_item({ PK = "CUSTOMER#c1", SK = "PROFILE" }).name == "Ada")

-- 2. A customer's orders, newest first: the table's own sort key.
same_list(collect("SK", db:query("CUSTOMER#c1",
  { begins_with = "ORDER#", scan_index_forward = false })), { "ORDER#o1004", "ORDER#o1001" })

-- 3. The lines of an order.
same_list(collect("SK", db:query("ORDER#o1002", { begins_with = "PRODUCT#" })),
  { "PRODUCT#p7", "PRODUCT#p9" })

-- 4. Which orders hold product p9?  The inverted index: its partition key
--    is the table's SK.  Each entry is the whole line item.
local lines = {}
for line in db:query("PRODUCT#p9", { index = "inverted" }) do lines[#lines + 1] = line end
assert(#lines == 2 and lines[1].PK == "ORDER#o1002" and lines[2].PK == "ORDER#o1003")
assert(lines[2].qty == 5 and lines[2].price == 100, "projection all: the whole item")

-- 5. Who placed order o1004?
same_list(collect("PK", db:query("ORDER#o1004", { index = "inverted", begins_with = "CUSTOMER#" })),
  { "CUSTOMER#c1" })

-- 6. Every customer: every PROFILE item, in customer order.
same_list(collect("name", db:query("PROFILE", { index = "inverted" })), { "Ada", "Ben", "Cy" })

-- 7. Pending orders, oldest first, from the sparse status index; its
--    entries hold the keys (table and index) and the projected total only.
local pending = {}
for o in db:query("PENDING", { index = "by_status" }) do
  pending[#pending + 1] = o.SK
  assert(o.PK and o.status == "PENDING" and o.date and o.total, "keys and total projected")
  assert(o.email == nil and o.name == nil, "nothing else projected")
end
same_list(pending, { "ORDER#o1002", "ORDER#o1003", "ORDER#o1004" })

--    ...with a key condition on the index sort key (the date).
same_list(collect("SK", db:query("PENDING",
  { index = "by_status", between = { "2024-03-05", "2024-03-31" } })),
  { "ORDER#o1003", "ORDER#o1004" })

--    The index is sparse: a scan of it sees the four orders, nothing else.
local n = 0
for _ in db:scan { index = "by_status" } do n = n + 1 end
assert(n == 4, "only orders carry a status")

-- 8. Shipping an order moves it from one index partition to another, in the
--    same transaction as the item itself.
assert(db:update_item({ PK = "CUSTOMER#c2", SK = "ORDER#o1002" },
  { set = { status = "SHIPPED", shipped = "2024-03-10" } }, { condition = 'status == "PENDING"' }))
same_list(collect("SK", db:query("PENDING", { index = "by_status" })),
  { "ORDER#o1003", "ORDER#o1004" })
same_list(collect("SK", db:query("SHIPPED", { index = "by_status" })),
  { "ORDER#o1001", "ORDER#o1002" })

-- 9. Cancelling an order: delete the order and its lines together; every
--    index entry goes with them.
local order_lines = {}
for line in db:query("ORDER#o1003") do order_lines[#order_lines + 1] = line end
assert(db:transaction(function(tx)
  assert(tx:delete_item({ PK = "CUSTOMER#c3", SK = "ORDER#o1003" },
                        { condition = 'status == "PENDING"' }))
  for _, line in ipairs(order_lines) do tx:delete_item(line) end
  return true
end))
same_list(collect("PK", db:query("PRODUCT#p9", { index = "inverted" })), { "ORDER#o1002" })
same_list(collect("SK", db:query("PENDING", { index = "by_status" })), { "ORDER#o1004" })

-- 10. Reopening without options keeps the indexes (they are in the schema).
db:close()
db = assert(dynafile.open(dir))
assert(db:schema().indexes.inverted and db:schema().indexes.by_status)
same_list(collect("name", db:query("PROFILE", { index = "inverted" })), { "Ada", "Ben", "Cy" })
db:close()

os.execute("rm -rf '" .. dir .. "'")
print("single_table: ok")
