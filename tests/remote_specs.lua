--- tests/remote_specs.lua -- run the public-API specs against the DynamoDB
-- backend (called by tests/remote_specs.sh with the server's name and
-- endpoint).  Every spec file runs through busted with
-- spec/support/remote_backend.lua as its helper, which opens a table on
-- the server wherever a spec opens a directory; the files, describe blocks
-- and tests named in spec/support/remote_skips.lua are left out and listed
-- with their reasons.  Prints busted's failures, the skips, and "N passed,
-- N failed".
--
--   lua5.4 tests/remote_specs.lua SERVER ENDPOINT [LUA [SPEC_FILE...]]
--
-- SERVER names the server for the skip list ("dynalite", "serve"); spec
-- files given at the end restrict the run to them.
local server, endpoint, lua = arg[1], arg[2], arg[3] or "lua5.4"
local only = {}
for i = 4, #arg do only[arg[i]] = true end
local skips = dofile("spec/support/remote_skips.lua")

local function applies(entry)
  if type(entry) == "string" then return entry end
  if entry.servers and not entry.servers[server] then return nil end
  return entry.reason
end

local files, skipped = {}, {}
local p = assert(io.popen("ls spec/*_spec.lua"))
for f in p:lines() do
  local why = skips.files[f] and applies(skips.files[f])
  if next(only) and not only[f] then why = false end
  if lua ~= "lua5.4" and f:find("_54_spec") then why = "Lua 5.4 only" end
  if why then
    skipped[#skipped + 1] = f .. ": " .. why
  elseif why == nil then
    files[#files + 1] = f
  end
end
p:close()

-- A test name as a Lua pattern for --filter-out.
local function escape(s)
  return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"))
end
local filters = {}
-- a describe block: every test whose full name starts with its name
for _, d in ipairs(skips.describes or {}) do
  local why = applies(d)
  if why then
    filters[#filters + 1] = "--filter-out='^" .. escape(d.name .. " "):gsub("'", "'\\''") .. "'"
    skipped[#skipped + 1] = d.name .. " (every test): " .. why
  end
end
for _, t in ipairs(skips.tests) do
  local why = applies(t)
  if why then
    filters[#filters + 1] = "--filter-out='^" .. escape(t.name):gsub("'", "'\\''") .. "$'"
    skipped[#skipped + 1] = t.name .. ": " .. why
  end
end

-- busted is started by the chosen interpreter itself (its --lua option
-- would run it again through a shell, which splits these arguments)
local cmd = string.format("DYNAFILE_TEST_ENDPOINT='%s' %s /usr/bin/busted -r %s "
  .. "--helper=spec/support/remote_backend.lua -o TAP %s %s 2>&1", endpoint, lua, lua,
  table.concat(filters, " "), table.concat(files, " "))
local pass, fail = 0, 0
local failing = false
-- (busted given no file would run every spec under spec/)
local out = assert(io.popen(#files > 0 and cmd or "true"))
for line in out:lines() do
  if line:find("^ok ") then
    pass = pass + 1
    failing = false
  elseif line:find("^not ok ") then
    fail = fail + 1
    failing = true
    print(line)
  elseif failing and line:find("^#") then
    print(line)
  end
end
out:close()
for _, s in ipairs(skipped) do print("skip " .. s) end
print(string.format("%d passed, %d failed", pass, fail))
os.exit(fail == 0 and 0 or 1)
