-- parallel_scan.lua -- scan one table from several processes at once.
--
-- A scan can be cut into n segments (`segment = k, segments = n`): each
-- covers a slice of the partitions, the slices do not overlap, and
-- together they cover the table.  Here n worker processes each scan one
-- segment and report an aggregate; the parent merges the reports and
-- checks the result against an ordinary one-process scan.
--
--   lua5.4 examples/parallel_scan.lua [n]        (default n = 2)
--
-- The workers are this same file run with `--segment k n dir`, by the same
-- interpreter and with the same module paths.  Each opens the database
-- itself: a database is opened after fork, never inherited.
local dynafile = require "dynafile"

local WORKER_FLAG = "--segment"

-- What one process computes over its items: how many, the sum of their
-- scores, and how many in each category.
local function aggregate(items_iter)
  local count, total, by_cat = 0, 0, {}
  for item in items_iter do
    count = count + 1
    total = total + item.score
    by_cat[item.cat] = (by_cat[item.cat] or 0) + 1
  end
  return count, total, by_cat
end

-- One line per report: "count total cat=n cat=n ...".
local function report(count, total, by_cat)
  local parts = { tostring(count), tostring(total) }
  for cat, n in pairs(by_cat) do parts[#parts + 1] = cat .. "=" .. n end
  return table.concat(parts, " ")
end

if arg[1] == WORKER_FLAG then
  -- worker: scan segment k of n
  local k, n, dir = tonumber(arg[2]), tonumber(arg[3]), arg[4]
  local db = assert(dynafile.open(dir, { readonly = true }))
  print(report(aggregate(db:scan { segment = k, segments = n })))
  db:close()
  return
end

local n = tonumber(arg[1]) or 2
local dir = os.tmpname()
os.remove(dir)

-- 20,000 items in 2,000 partitions
local db = assert(dynafile.open(dir, { pk = "customer", sk = "order" }))
db:batch_write(function(w)
  for i = 1, 20000 do
    w:put_item { customer = "c" .. (i % 2000), order = i, score = i % 97,
                 cat = ({ "book", "game", "tool", "food" })[i % 4 + 1] }
  end
end)
db:close()

-- The workers: the interpreter running this file, the same module paths.
local interpreter = arg[-1] or "lua5.4"
local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local env = "LUA_PATH=" .. quote(package.path) .. " LUA_CPATH=" .. quote(package.cpath)
local pipes = {}
for k = 1, n do -- all started before any is read: they run at once
  pipes[k] = assert(io.popen(string.format("env %s %s %s %s %d %d %s", env,
    quote(interpreter), quote(arg[0]), WORKER_FLAG, k, n, quote(dir))))
end

-- merge
local count, total, by_cat = 0, 0, {}
for k = 1, n do
  local line = pipes[k]:read("*l")
  assert(pipes[k]:close(), "worker " .. k .. " failed")
  local c, t, rest = line:match("^(%d+) (%d+)(.*)$")
  count, total = count + tonumber(c), total + tonumber(t)
  for cat, m in rest:gmatch("(%w+)=(%d+)") do by_cat[cat] = (by_cat[cat] or 0) + tonumber(m) end
  print(string.format("segment %d of %d: %s items", k, n, c))
end

-- the same in one process, for comparison
db = assert(dynafile.open(dir))
local count1, total1, by_cat1 = aggregate(db:scan())
db:close()
os.execute("rm -rf " .. quote(dir))

print(string.format("merged: %d items, score total %d, books %d", count, total, by_cat.book))
assert(count == count1 and total == total1, "the segments do not add up to the table")
for cat, m in pairs(by_cat1) do assert(by_cat[cat] == m, cat) end
print("the " .. n .. " segments add up to the one-process scan")
