-- spec/support/backend.lua: the backend a spec runs on (loaded with
-- dofile).  The specs run on a local database, and through
-- tests/remote_specs.sh on the DynamoDB backend (DYNAFILE_TEST_ENDPOINT
-- set, spec/support/remote_backend.lua opening tables).  Two things a
-- spec asserts differ by design, and only these are asked through here:
-- db:check() verifies a local database's storage (DynamoDB keeps its
-- indexes itself: the backend answers NotSupported), and db:stat()'s
-- counts are exact locally (DynamoDB's ItemCount is refreshed about every
-- six hours).
local luassert = require "luassert"

local M = {}

--- True when the specs run against the DynamoDB backend.
M.remote = (os.getenv("DYNAFILE_TEST_ENDPOINT") or "") ~= ""

--- Assert that the database's storage is consistent: db:check() is ok
-- on a local database; the DynamoDB backend answers NotSupported.
function M.assert_checked(db)
  local r, msg, code = db:check()
  if M.remote then
    luassert.equal("NotSupported", code, msg)
    return
  end
  luassert.is_table(r, msg)
  luassert.is_true(r.ok, "index out of step: missing " .. tostring(r.missing_index)
    .. ", stale " .. tostring(r.stale_index))
end

--- Assert db:stat()'s counts (`items`, `index_entries`): exact on a
-- local database; on the DynamoDB backend, numbers (DynamoDB's own
-- counts, which lag).
function M.assert_counts(db, counts)
  local s = assert(db:stat())
  for k, n in pairs(counts) do
    if M.remote then
      luassert.is_number(s[k], k)
    else
      luassert.equal(n, s[k], k)
    end
  end
end

return M
