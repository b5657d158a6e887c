-- spec/support/remote_backend.lua: a busted helper (--helper) that runs the
-- public-API specs against the DynamoDB backend.  With
-- DYNAFILE_TEST_ENDPOINT set (tests/remote_specs.sh starts the server and
-- sets it), dynafile.open(dir, opts) opens the table "dynamodb://<name>"
-- on that endpoint instead, one table per directory: a reopen of the
-- directory reopens its table, as long as the directory exists (the helper
-- makes it, as a local open does; a spec that removed it opens a new
-- table, as it would a new database).  Options that only tune local storage
-- (sync, map_size, max_readers, prefetch) are dropped: they change no result.
-- DynamoDB gives each key attribute one type: the key types a spec uses
-- are in spec/support/remote_skips.lua -- `types` by spec file, overridden
-- by `describe_types` by the name of the enclosing `describe` blocks
-- (followed here through busted's describe events), found when the spec
-- calls dynafile.open.
local dynafile = require "dynafile"

local endpoint = os.getenv("DYNAFILE_TEST_ENDPOINT")
if endpoint and endpoint ~= "" then
  local busted = require "busted"
  local local_open = dynafile.open
  local run = string.format("%x%04x", os.time() % 0x1000000, math.random(0, 0xffff))
  local tables, n = {}, 0
  local DROPPED = { sync = true, map_size = true, max_readers = true, prefetch = true }
  local skips = dofile("spec/support/remote_skips.lua")
  local file_types = skips.types or {}
  local describe_types = skips.describe_types or {}

  -- the names of the describe blocks running now, outermost first
  local describing = {}
  busted.subscribe({ "describe", "start" }, function(element)
    describing[#describing + 1] = element.name
    return nil, true
  end)
  busted.subscribe({ "describe", "end" }, function()
    describing[#describing] = nil
    return nil, true
  end)

  local function spec_file()
    for level = 3, 12 do
      local info = debug.getinfo(level, "S")
      if not info then break end
      local src = (info.source or ""):gsub("^@%./", ""):gsub("^@", "")
      if src:find("^spec/.*_spec%.lua$") then return src end
    end
  end

  -- The key types for a table opened now: the defaults, then the spec
  -- file's, then each enclosing describe block's.
  local function key_types()
    local t = {}
    local layers = { skips.default_types or {}, file_types[spec_file() or ""] or {} }
    for _, name in ipairs(describing) do layers[#layers + 1] = describe_types[name] or {} end
    for _, layer in ipairs(layers) do
      for k, v in pairs(layer) do t[k] = v end
    end
    return t
  end

  dynafile.open = function(path, opts)
    if type(path) ~= "string" or path == "" or path:find("^dynamodb://") then
      return local_open(path, opts)
    end
    local name = tables[path]
    if not name or not os.rename(path, path) then
      n = n + 1
      name = string.format("s%s_%d", run, n)
      tables[path] = name
    end
    local o = {}
    if type(opts) == "table" then
      for k, v in pairs(opts) do
        if not DROPPED[k] then o[k] = v end
      end
    elseif opts ~= nil then
      o = opts
    end
    if type(o) == "table" then
      o.endpoint, o.region = endpoint, "us-east-1"
      if o.types == nil then o.types = key_types() end
    end
    os.execute("mkdir -p '" .. path:gsub("'", "'\\''") .. "' 2>/dev/null")
    -- a tail call: a misuse error names the spec's line, not this one
    return local_open("dynamodb://" .. name, o)
  end
end
