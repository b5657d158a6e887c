--- dynafile.remote.table: a DynamoDB table made to match the open options.
--
-- `ensure` describes the table; when it is missing, creates it from the
-- options (key schema, attribute types, GSIs, LSIs, billing) and waits
-- until it is ACTIVE; when it exists, checks the options against it as a
-- local open checks them against the stored schema, adds the GSIs the
-- options name and the table lacks (waiting for their backfill), and
-- turns TTL on when the options name a TTL attribute.  The schema it
-- returns has the shape of a local handle's `db:schema()`.
--
-- Invariant: `ensure` returns a schema only for a table that is ACTIVE,
-- whose key schema and indexes are those the options ask for.
-- @module dynafile.remote.table

local http = require "dynafile.remote.http"

local type, pairs, ipairs, tostring = type, pairs, ipairs, tostring
local string_format, table_sort, table_concat = string.format, table.sort, table.concat

local M = {}

local PROJ = { all = "ALL", keys = "KEYS_ONLY" }

local function projection_of(p)
  if type(p) == "table" then
    local list = {}
    for i, a in ipairs(p) do list[i] = a end
    return { ProjectionType = "INCLUDE", NonKeyAttributes = list }
  end
  return { ProjectionType = PROJ[p or "all"] }
end

local function projection_from(pd)
  local t = pd and pd.ProjectionType or "ALL"
  if t == "ALL" then return "all" end
  if t == "KEYS_ONLY" then return "keys" end
  local list = {}
  for i, a in ipairs(pd.NonKeyAttributes or {}) do list[i] = a end
  table_sort(list)
  return list
end

local function keys_from(ks)
  local pk, sk
  for _, k in ipairs(ks or {}) do
    if k.KeyType == "HASH" then pk = k.AttributeName else sk = k.AttributeName end
  end
  return pk, sk
end

local function key_schema(pk, sk)
  local ks = { { AttributeName = pk, KeyType = "HASH" } }
  if sk then ks[2] = { AttributeName = sk, KeyType = "RANGE" } end
  return ks
end

--- The schema (as `db:schema()` gives it) of a TableDescription.
-- @tparam table d the TableDescription
-- @tparam[opt] string ttl the TTL attribute
-- @treturn table `{pk, sk, ttl, indexes, types}`
-- @raise never
function M.schema_of(d, ttl)
  local pk, sk = keys_from(d.KeySchema)
  local types = {}
  for _, a in ipairs(d.AttributeDefinitions or {}) do types[a.AttributeName] = a.AttributeType end
  local s = { pk = pk, sk = sk, ttl = ttl, indexes = {}, types = types }
  for kind, list in pairs { gsi = d.GlobalSecondaryIndexes or {},
                            lsi = d.LocalSecondaryIndexes or {} } do
    for _, x in ipairs(list) do
      local ipk, isk = keys_from(x.KeySchema)
      s.indexes[x.IndexName] = {
        name = x.IndexName, kind = kind, pk = kind == "gsi" and ipk or nil, sk = isk,
        projection = projection_from(x.Projection), status = x.IndexStatus,
      }
    end
  end
  return s
end

local function same_projection(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b end
  local x, y = {}, {}
  for i, v in ipairs(a) do x[i] = v end
  for i, v in ipairs(b) do y[i] = v end
  table_sort(x)
  table_sort(y)
  return table_concat(x, "\0") == table_concat(y, "\0")
end

-- Wait until the table and its indexes are ACTIVE (deadline in
-- http.now() seconds).
local function wait_active(c, name, deadline)
  local delay = 0.05
  while true do
    local r, msg, code = c:call("DescribeTable", { TableName = name })
    if not r then return nil, msg, code end
    local d = r.Table
    local ready = d.TableStatus == "ACTIVE"
    for _, x in ipairs(d.GlobalSecondaryIndexes or {}) do
      if x.IndexStatus ~= "ACTIVE" then ready = false end
    end
    if ready then return d end
    if http.now() + delay > deadline then
      return nil, string_format("table %s is still %s after waiting", name, d.TableStatus),
        "Timeout"
    end
    http.sleep(delay)
    delay = delay < 1 and delay * 2 or 1
  end
end

local function attr_defs(types, names)
  local defs, seen = {}, {}
  for _, n in ipairs(names) do
    if n and not seen[n] then
      seen[n] = true
      defs[#defs + 1] = { AttributeName = n, AttributeType = types[n] or "S" }
    end
  end
  return defs
end

local function billing(req, o)
  if type(o.billing) == "table" then
    req.BillingMode = "PROVISIONED"
    req.ProvisionedThroughput = { ReadCapacityUnits = o.billing.read,
                                  WriteCapacityUnits = o.billing.write }
  else
    req.BillingMode = "PAY_PER_REQUEST"
  end
end

local function create(c, name, o)
  local pk, sk = o.pk or "PK", o.sk
  if sk == nil then sk = "SK" end
  if sk == false then sk = nil end
  local names = { pk, sk or false }
  local req = { TableName = name, KeySchema = key_schema(pk, sk) }
  billing(req, o)
  local gsis, lsis = {}, {}
  for _, d in ipairs(o.indexes) do
    local x = { IndexName = d.name, Projection = projection_of(d.projection) }
    if d.kind == "gsi" then
      x.KeySchema = key_schema(d.pk, d.sk)
      if req.ProvisionedThroughput then x.ProvisionedThroughput = req.ProvisionedThroughput end
      gsis[#gsis + 1] = x
      names[#names + 1] = d.pk
    else
      x.KeySchema = key_schema(pk, d.sk)
      lsis[#lsis + 1] = x
    end
    names[#names + 1] = d.sk or false
  end
  local clean = {}
  for _, n in ipairs(names) do if n then clean[#clean + 1] = n end end
  req.AttributeDefinitions = attr_defs(o.types, clean)
  if #gsis > 0 then req.GlobalSecondaryIndexes = gsis end
  if #lsis > 0 then req.LocalSecondaryIndexes = lsis end
  return c:call("CreateTable", req)
end

local function add_gsi(c, name, d, desc, o)
  local names = { d.pk, d.sk }
  local req = {
    TableName = name,
    AttributeDefinitions = attr_defs(o.types, names),
    GlobalSecondaryIndexUpdates = { { Create = {
      IndexName = d.name, KeySchema = key_schema(d.pk, d.sk),
      Projection = projection_of(d.projection),
      ProvisionedThroughput = desc.BillingModeSummary == nil and desc.ProvisionedThroughput
        and desc.ProvisionedThroughput.ReadCapacityUnits > 0 and {
          ReadCapacityUnits = desc.ProvisionedThroughput.ReadCapacityUnits,
          WriteCapacityUnits = desc.ProvisionedThroughput.WriteCapacityUnits } or nil,
    } } },
  }
  local r, msg, code = c:call("UpdateTable", req)
  if not r and code == "ValidationError" and msg:find("provisionedThroughput", 1, true) then
    -- servers of the API before on-demand tables (dynalite) want a
    -- throughput for every new index
    local spec = req.GlobalSecondaryIndexUpdates[1].Create
    spec.ProvisionedThroughput = { ReadCapacityUnits = 1, WriteCapacityUnits = 1 }
    return c:call("UpdateTable", req)
  end
  return r, msg, code
end

--- Make the table match the options.
-- @tparam table c the client
-- @tparam string name the table name
-- @tparam table o `{pk, sk, indexes = {defs as in the local open},
--   types = {attr = "S"|"N"|"B"}, billing, ttl = name|nil, create =
--   bool, wait = seconds}`
-- @treturn table|nil the schema (with `types`, the key attribute types)
-- @treturn string message on failure
-- @treturn string code: "ValidationError" (the options disagree with the
--   table), "ResourceNotFound" (missing and `create = false`), "Timeout",
--   or a client error
-- @raise never (errors are returned)
function M.ensure(c, name, o)
  for _, d in ipairs(o.indexes) do
    if d.kind == "lsi" and o.sk == false then
      return nil, string_format("dynafile.open: local index %s needs a table with a sort key",
        d.name), "ValidationError"
    end
  end
  local deadline = http.now() + (o.wait or 300)
  local r, msg, code = c:call("DescribeTable", { TableName = name })
  local d
  if not r then
    if code ~= "ResourceNotFound" then return nil, msg, code end
    if o.create == false then
      return nil, string_format("dynafile.open: table %s does not exist", name), code
    end
    local cr, cmsg, ccode = create(c, name, o)
    if not cr and ccode ~= "ResourceInUse" then return nil, "dynafile.open: " .. cmsg, ccode end
    d, msg, code = wait_active(c, name, deadline)
    if not d then return nil, msg, code end
  else
    d = r.Table
    if d.TableStatus ~= "ACTIVE" then
      d, msg, code = wait_active(c, name, deadline)
      if not d then return nil, msg, code end
    end
  end
  local s = M.schema_of(d)
  local function differ(what)
    return nil, string_format("dynafile.open: the options disagree with table %s: %s", name, what),
      "ValidationError"
  end
  if o.pk and o.pk ~= s.pk then
    return differ(string_format("pk is %s, not %s", s.pk, o.pk))
  end
  if o.sk ~= nil and (o.sk or nil) ~= s.sk then
    return differ(string_format("sk is %s, not %s", tostring(s.sk or false), tostring(o.sk)))
  end
  for attr, t in pairs(o.types) do
    if s.types[attr] and s.types[attr] ~= t then
      return differ(string_format("attribute %s has type %s, not %s", attr, s.types[attr], t))
    end
  end
  for _, want in ipairs(o.indexes) do
    local have = s.indexes[want.name]
    if have then
      if have.kind ~= want.kind or (want.kind == "gsi" and have.pk ~= want.pk)
          or have.sk ~= want.sk
          or not same_projection(have.projection,
            projection_from(projection_of(want.projection))) then
        return differ("index " .. want.name .. " is defined differently")
      end
    elseif want.kind == "lsi" then
      return differ("local index " .. want.name .. " can only be defined when the database is "
        .. "created (DynamoDB adds LSIs only at table creation)")
    else
      local ur, umsg, ucode = add_gsi(c, name, want, d, o)
      if not ur then
        return nil, "dynafile.open: adding index " .. want.name .. ": " .. umsg, ucode
      end
      d, msg, code = wait_active(c, name, deadline)
      if not d then return nil, msg, code end
      s = M.schema_of(d)
      if not s.indexes[want.name] then
        -- dynalite answers UpdateTable without adding the index
        return nil, string_format("dynafile.open: not supported by the DynamoDB backend: the "
          .. "server accepted index %s for table %s but did not create it", want.name, name),
          "NotSupported"
      end
    end
  end
  if not o.ttl_attr then
    -- a table whose TTL is on keeps it, as a local database keeps its
    -- schema's TTL attribute
    local tr = c:call("DescribeTimeToLive", { TableName = name })
    local td = tr and tr.TimeToLiveDescription
    if td and (td.TimeToLiveStatus == "ENABLED" or td.TimeToLiveStatus == "ENABLING") then
      s.ttl, s.server_ttl = td.AttributeName, true
    end
  else
    local tr = c:call("DescribeTimeToLive", { TableName = name })
    local td = tr and tr.TimeToLiveDescription
    local on = td and td.TimeToLiveStatus
    if td and (on == "ENABLED" or on == "ENABLING") and td.AttributeName ~= o.ttl_attr then
      return differ(string_format("the TTL attribute is %s, not %s", td.AttributeName,
        o.ttl_attr))
    end
    if not (on == "ENABLED" or on == "ENABLING") then
      local ur, umsg, ucode = c:call("UpdateTimeToLive", { TableName = name,
        TimeToLiveSpecification = { Enabled = true, AttributeName = o.ttl_attr } })
      -- a server without TTL (dynalite) still gets dynafile's own: expired
      -- items are hidden from reads and purge_expired deletes them
      if not ur and ucode ~= "NotSupported" then
        return nil, "dynafile.open: turning on TTL: " .. umsg, ucode
      end
      s.server_ttl = ur ~= nil
    else
      s.server_ttl = true
    end
    s.ttl = o.ttl_attr
  end
  s.description = d
  return s
end

--- Delete a table's GSI and wait until it is gone.
-- @tparam table c the client
-- @tparam string name the table
-- @tparam string index the GSI
-- @tparam[opt] number wait seconds to wait at most (300)
-- @treturn table|nil the table's schema after
-- @treturn string message on failure
-- @treturn string code on failure: "NotSupported" (the server left the
--   index in place), "Timeout", or a client error
-- @raise never (errors are returned)
function M.drop_gsi(c, name, index, wait)
  local r, msg, code = c:call("UpdateTable", { TableName = name,
    GlobalSecondaryIndexUpdates = { { Delete = { IndexName = index } } } })
  if not r then return nil, msg, code end
  local deadline = http.now() + (wait or 300)
  local d
  d, msg, code = wait_active(c, name, deadline)
  if not d then return nil, msg, code end
  local s = M.schema_of(d)
  if s.indexes[index] then
    -- dynalite answers UpdateTable without deleting the index
    return nil, string_format("not supported by the DynamoDB backend: the server accepted the "
      .. "deletion of index %s of table %s but did not delete it", index, name), "NotSupported"
  end
  return s
end

return M
