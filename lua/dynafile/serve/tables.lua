--- dynafile.serve.tables: the control plane -- CreateTable, DeleteTable,
-- DescribeTable, ListTables, UpdateTable, UpdateTimeToLive,
-- DescribeTimeToLive, TagResource, UntagResource, ListTagsOfResource,
-- DescribeEndpoints, DescribeLimits and the continuous-backup pair.
--
-- A table's definition is kept in its catalog record (catalog.lua): key
-- schema with types, indexes with their projections, status and
-- throughput, stream, TTL and tags.  The dynafile database under it holds
-- the same keys and indexes in dynafile's terms (pk, sk, gsi, lsi, ttl,
-- stream) and the items.  Descriptions are built from the record plus
-- live counts from the database.
--
-- Invariant: a request that fails validation changes nothing; the
-- checks come before the first catalog write, in DynamoDB's order.
-- @module dynafile.serve.tables

local dynafile = require "dynafile"
local errors = require "dynafile.serve.errors"
local json = require "dynafile.serve.json"
local catalog = require "dynafile.serve.catalog"
local shape = require "dynafile.serve.shape"

local ngx = ngx -- luacheck: globals ngx
local pairs, ipairs, tostring, tonumber, pcall, error, next =
  pairs, ipairs, tostring, tonumber, pcall, error, next
local string_format, string_find, string_match, string_sub =
  string.format, string.find, string.match, string.sub
local table_concat, table_sort = table.concat, table.sort
local math_floor = math.floor

local M = {}

local validation = errors.validation
local INVALID = "One or more parameter values were invalid: "

local function now()
  return ngx and ngx.now() or os.time()
end

-- ------------------------------------------------------------ names, ARNs

-- Plain names already found valid (the common case: no ARN), so a request
-- on a known table skips the pattern match; emptied when it grows large.
local valid_names, valid_count = {}, 0

--- The table name a request names: a name, or a table ARN
-- (arn:aws:dynamodb:REGION:ACCOUNT:table/NAME).  Raises DynamoDB's
-- ValidationException for a malformed one.
function M.table_name(v, member)
  if valid_names[v] then return v end
  member = member or "tableName"
  if string_sub(v, 1, 4) == "arn:" then
    local name = string_match(v, "^arn:[^:]+:dynamodb:[^:]*:[^:]*:table/([^/]+)$")
    if not name then validation("Invalid TableArn: Invalid ResourceArn provided as input %s", v) end
    v = name
  end
  if #v < 3 or #v > 255 then
    validation("TableName must be at least 3 characters long and at most 255 characters long")
  end
  if not string_find(v, shape.NAME_PATTERN) then
    validation("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: "
      .. "Member must satisfy regular expression pattern: %s", v, member, shape.NAME_PATTERN_TEXT)
  end
  if valid_count >= 4096 then valid_names, valid_count = {}, 0 end
  valid_names[v] = true
  valid_count = valid_count + 1
  return v
end

function M.table_arn(ctx, name)
  return string_format("arn:aws:dynamodb:%s:%s:table/%s", ctx.region, ctx.account, name)
end

-- A table or index ARN given to TagResource & co.: the table name.
local function arn_table(arn)
  local name = string_match(arn, "^arn:[^:]+:dynamodb:[^:]*:[^:]*:table/([a-zA-Z0-9_.%-]+)$")
  if not name then validation("Invalid TableArn: Invalid ResourceArn provided as input %s", arn) end
  return name
end

local function iso8601_ms(t)
  local s = math_floor(t)
  return os.date("!%Y-%m-%dT%H:%M:%S", s) .. string_format(".%03d", math_floor((t - s) * 1000))
end

-- ------------------------------------------------------------ key schemas

-- Check a KeySchema list against the attribute definitions; returns
-- {hash = {name, type}, range = {name, type} | nil}.
local function key_schema(ks, defs, def_names)
  local names = {}
  for i, k in ipairs(ks) do names[i] = k.AttributeName end
  for _, n in ipairs(names) do
    if not defs[n] then
      if #ks > #def_names then
        validation("Invalid KeySchema: Some index key attribute have no definition")
      end
      validation(INVALID .. "Some index key attributes are not defined in AttributeDefinitions. "
        .. "Keys: [%s], AttributeDefinitions: [%s]", table_concat(names, ", "),
        table_concat(def_names, ", "))
    end
  end
  if ks[2] and names[1] == names[2] then
    validation("Both the Hash Key and the Range Key element in the KeySchema have the same name")
  end
  if ks[1].KeyType ~= "HASH" then
    validation("Invalid KeySchema: The first KeySchemaElement is not a HASH key type")
  end
  if ks[2] and ks[2].KeyType ~= "RANGE" then
    validation("Invalid KeySchema: The second KeySchemaElement is not a RANGE key type")
  end
  local out = { hash = { name = names[1], type = defs[names[1]] } }
  if ks[2] then out.range = { name = names[2], type = defs[names[2]] } end
  return out
end

local function projection_of(p, index_name)
  local t = p.ProjectionType
  if t == nil then validation(INVALID .. "Unknown ProjectionType: null") end
  if p.NonKeyAttributes and t ~= "INCLUDE" then
    validation(INVALID .. "ProjectionType is %s, but NonKeyAttributes is specified", t)
  end
  if t == "INCLUDE" and not p.NonKeyAttributes then
    validation(INVALID .. "NonKeyAttributes must not be empty for index: %s", index_name)
  end
  local out = { type = t }
  if p.NonKeyAttributes then
    local seen, attrs = {}, {}
    for _, a in ipairs(p.NonKeyAttributes) do
      if seen[a] then
        validation(INVALID .. "Duplicate attribute in NonKeyAttributes: %s for index: %s", a,
          index_name)
      end
      seen[a] = true
      attrs[#attrs + 1] = a
    end
    out.attrs = attrs
  end
  return out
end

local function throughput_of(pt)
  if not pt then return nil end
  local r, w = pt.ReadCapacityUnits, pt.WriteCapacityUnits
  if r > 1000000000000 then
    validation("Given value %d for ReadCapacityUnits is out of bounds", r)
  end
  if w > 1000000000000 then
    validation("Given value %d for WriteCapacityUnits is out of bounds", w)
  end
  return { read = r, write = w }
end

local function stream_spec(s)
  if not s then return nil end
  if s.StreamEnabled then
    if not s.StreamViewType then
      validation(INVALID .. "You must specify a StreamViewType when enabling a DynamoDB stream")
    end
    return { enabled = true, view = s.StreamViewType }
  end
  if s.StreamViewType then
    validation(INVALID .. "You cannot specify a StreamViewType when disabling a DynamoDB stream")
  end
  return { enabled = false }
end

-- The dynafile index definition of a catalog index.
local function dynafile_index(ix)
  local p = ix.projection
  local proj = "all"
  if p.type == "KEYS_ONLY" then
    proj = "keys"
  elseif p.type == "INCLUDE" then
    proj = {}
    for i, a in ipairs(p.attrs) do proj[i] = a end
  end
  local d = { projection = proj }
  if ix.kind == "gsi" then d.pk = ix.keys.hash.name end
  if ix.keys.range then d.sk = ix.keys.range.name end
  return d
end
M.dynafile_index = dynafile_index

-- The stream setting of the table's dynafile database: DynamoDB streams
-- keep records for 24 hours.
local STREAM_KEEP = { keep_seconds = 86400 }

-- ------------------------------------------------------------ descriptions

local function key_schema_json(keys)
  local out = { { AttributeName = keys.hash.name, KeyType = "HASH" } }
  if keys.range then out[2] = { AttributeName = keys.range.name, KeyType = "RANGE" } end
  return out
end

local function projection_json(p)
  local out = { ProjectionType = p.type }
  if p.attrs then out.NonKeyAttributes = json.list(p.attrs) end
  return out
end

local function throughput_json(rec, t)
  t = t or rec
  local pt = {
    NumberOfDecreasesToday = t.decreases or 0,
    ReadCapacityUnits = rec.billing == "PAY_PER_REQUEST" and 0 or (t.read or 0),
    WriteCapacityUnits = rec.billing == "PAY_PER_REQUEST" and 0 or (t.write or 0),
  }
  if t.last_increase then pt.LastIncreaseDateTime = t.last_increase end
  if t.last_decrease then pt.LastDecreaseDateTime = t.last_decrease end
  return pt
end

local function sorted_indexes(set)
  local list = {}
  for _, ix in pairs(set or {}) do list[#list + 1] = ix end
  table_sort(list, function(a, b) return (a.order or 0) < (b.order or 0) end)
  return list
end
M.sorted_indexes = sorted_indexes

-- Live counts: items and DynamoDB's size of them, for the table and each
-- index.  Exact up to SIZE_SCAN_LIMIT items (a scan); above that the item
-- count is exact and sizes are estimated from a sample.
local SIZE_SCAN_LIMIT = 2000

local function counts(rec, db)
  local size = require "dynafile.serve.size"
  local st = db and db:stat()
  local n = st and st.items or 0
  local out = { items = n, bytes = 0, index = {} }
  if not db or n == 0 then return out end
  local sample, sampled = 0, 0
  for item in db:scan { limit = SIZE_SCAN_LIMIT } do
    sample = sample + size.item(item)
    sampled = sampled + 1
  end
  out.bytes = sampled > 0 and math_floor(sample * n / sampled + 0.5) or 0
  if n <= SIZE_SCAN_LIMIT then
    for _, set in ipairs { rec.gsi or {}, rec.lsi or {} } do
      for name in pairs(set) do
        local c, b = 0, 0
        for item in db:scan { index = name } do
          c = c + 1
          b = b + size.item(item)
        end
        out.index[name] = { items = c, bytes = b }
      end
    end
  end
  return out
end

--- The TableDescription of a record.
-- @tparam table rec the catalog record
-- @tparam table ctx the request context (region for the ARNs)
-- @tparam[opt] string status override (CREATING, UPDATING, DELETING)
-- @tparam[opt] db db the open database, for counts
-- @tparam[opt] string form "delete": the short form DeleteTable returns
function M.describe(rec, ctx, status, db, form)
  local arn = M.table_arn(ctx, rec.name)
  local c = counts(rec, db)
  local d = {
    TableName = rec.name,
    TableStatus = status or rec.status,
    TableArn = arn,
    TableId = rec.table_id,
    TableSizeBytes = c.bytes,
    ItemCount = c.items,
    ProvisionedThroughput = throughput_json(rec),
    DeletionProtectionEnabled = rec.deletion_protection or false,
  }
  if rec.billing == "PAY_PER_REQUEST" or rec.billing_set then
    d.BillingModeSummary = { BillingMode = rec.billing }
    if rec.billing == "PAY_PER_REQUEST" then
      d.BillingModeSummary.LastUpdateToPayPerRequestDateTime = rec.billing_changed or rec.created
    end
  end
  if rec.on_demand then
    d.OnDemandThroughput = { MaxReadRequestUnits = rec.on_demand.read or -1,
      MaxWriteRequestUnits = rec.on_demand.write or -1 }
  end
  if form == "delete" then return d end
  d.CreationDateTime = rec.created
  d.KeySchema = key_schema_json(rec.keys)
  local defs = {}
  for i, a in ipairs(rec.attrs) do defs[i] = { AttributeName = a[1], AttributeType = a[2] } end
  d.AttributeDefinitions = defs
  local gsis = sorted_indexes(rec.gsi)
  if #gsis > 0 then
    local out = {}
    for i, ix in ipairs(gsis) do
      local ic = c.index[ix.name] or {}
      local g = {
        IndexName = ix.name,
        KeySchema = key_schema_json(ix.keys),
        Projection = projection_json(ix.projection),
        IndexStatus = ix.status or "ACTIVE",
        ProvisionedThroughput = throughput_json(rec, ix),
        IndexSizeBytes = ic.bytes or 0,
        ItemCount = ic.items or 0,
        IndexArn = arn .. "/index/" .. ix.name,
      }
      if ix.backfilling then g.Backfilling = true end
      if ix.on_demand then
        g.OnDemandThroughput = { MaxReadRequestUnits = ix.on_demand.read or -1,
          MaxWriteRequestUnits = ix.on_demand.write or -1 }
      end
      out[i] = g
    end
    d.GlobalSecondaryIndexes = out
  end
  local lsis = sorted_indexes(rec.lsi)
  if #lsis > 0 then
    local out = {}
    for i, ix in ipairs(lsis) do
      local ic = c.index[ix.name] or {}
      out[i] = {
        IndexName = ix.name,
        KeySchema = key_schema_json(ix.keys),
        Projection = projection_json(ix.projection),
        IndexSizeBytes = ic.bytes or 0,
        ItemCount = ic.items or 0,
        IndexArn = arn .. "/index/" .. ix.name,
      }
    end
    d.LocalSecondaryIndexes = out
  end
  local s = rec.stream
  if s and s.label then
    if s.enabled then
      d.StreamSpecification = { StreamEnabled = true, StreamViewType = s.view }
    end
    d.LatestStreamLabel = s.label
    d.LatestStreamArn = arn .. "/stream/" .. s.label
  end
  if rec.sse then
    d.SSEDescription = { Status = "ENABLED", SSEType = "KMS",
      KMSMasterKeyArn = rec.sse.key or string_format(
        "arn:aws:kms:%s:%s:key/dynafile-serve-local", ctx.region, ctx.account) }
  end
  if rec.table_class then
    d.TableClassSummary = { TableClass = rec.table_class }
  end
  if rec.warm then
    d.WarmThroughput = { ReadUnitsPerSecond = rec.warm.read, WriteUnitsPerSecond = rec.warm.write,
      Status = "ACTIVE" }
  end
  return d
end

-- ------------------------------------------------------------ CreateTable

local function attribute_definitions(list)
  local defs, names = {}, {}
  for _, a in ipairs(list) do
    local n = a.AttributeName
    if defs[n] then
      validation(INVALID .. "Duplicate AttributeName in AttributeDefinitions: %s", n)
    end
    defs[n] = a.AttributeType
    names[#names + 1] = n
  end
  return defs, names
end

local function billing_of(req)
  local mode = req.BillingMode or "PROVISIONED"
  local pt = req.ProvisionedThroughput
  if mode == "PAY_PER_REQUEST" then
    if pt then
      validation(INVALID .. "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified "
        .. "when BillingMode is PAY_PER_REQUEST")
    end
  elseif not pt then
    if req.BillingMode then
      validation(INVALID .. "ReadCapacityUnits and WriteCapacityUnits must both be specified "
        .. "when BillingMode is PROVISIONED")
    end
    validation("No provisioned throughput specified for the table")
  end
  return mode, throughput_of(pt)
end

local function create_table(req, ctx)
  local name = M.table_name(req.TableName)
  local mode, pt = billing_of(req)
  local defs, def_names = attribute_definitions(req.AttributeDefinitions)
  if #req.KeySchema > #def_names then
    validation("Invalid KeySchema: Some index key attribute have no definition")
  end
  local keys = key_schema(req.KeySchema, defs, def_names)
  local used = { [keys.hash.name] = true }
  if keys.range then used[keys.range.name] = true end
  local index_names = {}
  local lsi, gsi = {}, {}
  local order = 0
  if req.LocalSecondaryIndexes then
    if #req.LocalSecondaryIndexes == 0 then
      validation(INVALID .. "List of LocalSecondaryIndexes is empty")
    end
    if not keys.range then
      validation(INVALID .. "Table KeySchema does not have a range key, which is required when "
        .. "specifying a LocalSecondaryIndex")
    end
    for _, ix in ipairs(req.LocalSecondaryIndexes) do
      local iname = ix.IndexName
      local ikeys = key_schema(ix.KeySchema, defs, def_names)
      if not ikeys.range then
        validation(INVALID .. "Index KeySchema does not have a range key for index: %s", iname)
      end
      if ikeys.hash.name ~= keys.hash.name then
        validation(INVALID .. "Index KeySchema does not have the same leading hash key as table "
          .. "KeySchema for index: %s. index hash key: %s, table hash key: %s", iname,
          ikeys.hash.name, keys.hash.name)
      end
      local proj = projection_of(ix.Projection, iname)
      if index_names[iname] then validation(INVALID .. "Duplicate index name: %s", iname) end
      index_names[iname] = true
      used[ikeys.range.name] = true
      order = order + 1
      lsi[iname] = { name = iname, kind = "lsi", keys = ikeys, projection = proj, order = order }
    end
    if #req.LocalSecondaryIndexes > 5 then
      validation(INVALID .. "Number of LocalSecondaryIndexes exceeds per-table limit of 5")
    end
  end
  if req.GlobalSecondaryIndexes then
    if #req.GlobalSecondaryIndexes == 0 then
      validation(INVALID .. "List of GlobalSecondaryIndexes is empty")
    end
    for _, ix in ipairs(req.GlobalSecondaryIndexes) do
      local iname = ix.IndexName
      local ikeys = key_schema(ix.KeySchema, defs, def_names)
      local proj = projection_of(ix.Projection, iname)
      local ipt
      if mode == "PAY_PER_REQUEST" then
        if ix.ProvisionedThroughput then
          validation(INVALID .. "ProvisionedThroughput should not be specified for index: %s when "
            .. "BillingMode is PAY_PER_REQUEST", iname)
        end
      else
        if not ix.ProvisionedThroughput then
          validation(INVALID .. "ProvisionedThroughput must be specified for index: %s", iname)
        end
        ipt = throughput_of(ix.ProvisionedThroughput)
      end
      if index_names[iname] then validation(INVALID .. "Duplicate index name: %s", iname) end
      index_names[iname] = true
      used[ikeys.hash.name] = true
      if ikeys.range then used[ikeys.range.name] = true end
      order = order + 1
      gsi[iname] = { name = iname, kind = "gsi", keys = ikeys, projection = proj, order = order,
        status = "ACTIVE", read = ipt and ipt.read, write = ipt and ipt.write,
        on_demand = ix.OnDemandThroughput and { read = ix.OnDemandThroughput.MaxReadRequestUnits,
          write = ix.OnDemandThroughput.MaxWriteRequestUnits } }
    end
    if #req.GlobalSecondaryIndexes > 20 then
      validation(INVALID .. "GlobalSecondaryIndex count exceeds the per-table limit of 20")
    end
  end
  local unused = {}
  for _, n in ipairs(def_names) do if not used[n] then unused[#unused + 1] = n end end
  if #unused > 0 then
    if not req.LocalSecondaryIndexes and not req.GlobalSecondaryIndexes then
      validation(INVALID .. "Number of attributes in KeySchema does not exactly match number of "
        .. "attributes defined in AttributeDefinitions")
    end
    local used_list = {}
    for n in pairs(used) do used_list[#used_list + 1] = n end
    table_sort(used_list)
    validation(INVALID .. "Some AttributeDefinitions are not used. AttributeDefinitions: [%s], "
      .. "keys used: [%s]", table_concat(def_names, ", "), table_concat(used_list, ", "))
  end
  local stream = stream_spec(req.StreamSpecification)
  local tags = {}
  if req.Tags then
    if #req.Tags > 50 then validation("One or more parameter values were invalid: Too many "
      .. "tags") end
    for _, t in ipairs(req.Tags) do tags[t.Key] = t.Value end
  end
  local t = now()
  local attrs = {}
  for _, n in ipairs(def_names) do attrs[#attrs + 1] = { n, defs[n] } end
  local rec = {
    name = name,
    id = catalog.random_id(16),
    created = t,
    keys = keys,
    attrs = attrs,
    billing = mode,
    billing_set = req.BillingMode ~= nil,
    billing_changed = mode == "PAY_PER_REQUEST" and t or nil,
    read = pt and pt.read, write = pt and pt.write,
    gsi = gsi, lsi = lsi, next_order = order,
    tags = tags,
    deletion_protection = req.DeletionProtectionEnabled or false,
    table_class = req.TableClass,
    sse = req.SSESpecification and req.SSESpecification.Enabled
      and { key = req.SSESpecification.KMSMasterKeyId } or nil,
    on_demand = req.OnDemandThroughput and { read = req.OnDemandThroughput.MaxReadRequestUnits,
      write = req.OnDemandThroughput.MaxWriteRequestUnits } or nil,
    warm = req.WarmThroughput and { read = req.WarmThroughput.ReadUnitsPerSecond,
      write = req.WarmThroughput.WriteUnitsPerSecond } or nil,
  }
  local id = rec.id
  rec.table_id = string_format("%s-%s-%s-%s-%s", id:sub(1, 8), id:sub(9, 12), id:sub(13, 16),
    id:sub(17, 20), id:sub(21, 32))
  if stream and stream.enabled then
    rec.stream = { enabled = true, view = stream.view, label = iso8601_ms(t), created = t,
      start_seq = 1 }
  end
  local done = catalog.create(rec, function(path)
    local opts = { pk = keys.hash.name, sk = keys.range and keys.range.name or false,
      sync = catalog.state.sync }
    local g, l = {}, {}
    for n, ix in pairs(gsi) do g[n] = dynafile_index(ix) end
    for n, ix in pairs(lsi) do l[n] = dynafile_index(ix) end
    if next(g) then opts.gsi = g end
    if next(l) then opts.lsi = l end
    if rec.stream then opts.stream = STREAM_KEEP end
    local db, msg, code = dynafile.open(path, opts)
    if not db then
      errors.raise("InternalServerError", string_format("cannot create the table: %s (%s)",
        tostring(msg), tostring(code)))
    end
    db:close()
  end)
  -- the answer shows the table and its indexes being created, as
  -- DynamoDB's does; DescribeTable shows them ACTIVE from now on
  for _, ix in pairs(done.gsi or {}) do ix.status = "CREATING" end
  return { TableDescription = M.describe(done, ctx, "CREATING") }
end

-- ------------------------------------------------------------ Delete, Describe, List

local function delete_table(req, ctx)
  local name = M.table_name(req.TableName)
  local described
  local rec = catalog.delete(name, function(r)
    if r.status == "CREATING" then
      errors.raise("ResourceInUseException",
        "Attempt to change a resource which is still in use: Table is being created: " .. name)
    elseif r.status == "DELETING" then
      errors.raise("ResourceInUseException",
        "Attempt to change a resource which is still in use: Table is being deleted: " .. name)
    end
    if r.deletion_protection then
      validation("Resource cannot be deleted as it is currently protected against deletion. "
        .. "Disable deletion protection first.")
    end
    local _, db = catalog.table(name)
    described = M.describe(r, ctx, "DELETING", db, "delete")
  end)
  described = described or M.describe(rec, ctx, "DELETING", nil, "delete")
  return { TableDescription = described }
end

local function describe_table(req, ctx)
  local name = M.table_name(req.TableName)
  local rec = catalog.record(name)
  if not rec then errors.not_found("Requested resource not found: Table: " .. name
    .. " not found") end
  local db
  if rec.status == "ACTIVE" or rec.status == "UPDATING" then
    local _
    _, db = catalog.table(name)
  end
  return { Table = M.describe(rec, ctx, nil, db) }
end

local function list_tables(req)
  local limit = req.Limit or 100
  local start = req.ExclusiveStartTableName
  local names = catalog.names()
  local out, last = {}, nil
  for _, n in ipairs(names) do
    if not start or n > start then
      if #out == limit then
        last = out[#out]
        break
      end
      out[#out + 1] = n
    end
  end
  local res = { TableNames = json.list(out) }
  if last then res.LastEvaluatedTableName = last end
  return res
end

-- ------------------------------------------------------------ UpdateTable

local function index_by_name(rec, name)
  return (rec.gsi or {})[name]
end

local function update_table(req, ctx)
  local name = M.table_name(req.TableName)
  local gsi_updates = req.GlobalSecondaryIndexUpdates
  if not req.ProvisionedThroughput and not req.BillingMode and not req.StreamSpecification
      and (not gsi_updates or #gsi_updates == 0) and not req.SSESpecification
      and not req.ReplicaUpdates and req.DeletionProtectionEnabled == nil
      and not req.TableClass and not req.OnDemandThroughput and not req.WarmThroughput then
    validation("At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, "
      .. "GlobalSecondaryIndexUpdates or SSESpecification or ReplicaUpdates is required")
  end
  if req.BillingMode == "PROVISIONED" and not req.ProvisionedThroughput then
    -- checked against the table below (a provisioned table may omit it)
    local _ = nil
  end
  local pt = throughput_of(req.ProvisionedThroughput)
  local creates, deletes = {}, {}
  if gsi_updates then
    local seen = {}
    for _, u in ipairs(gsi_updates) do
      local n = 0
      for _, k in ipairs { "Update", "Create", "Delete" } do if u[k] then n = n + 1 end end
      if n == 0 then
        validation(INVALID
          .. "One of GlobalSecondaryIndexUpdate.Update, GlobalSecondaryIndexUpdate.Create, "
          .. "GlobalSecondaryIndexUpdate.Delete must not be null")
      end
      local iname = (u.Update or u.Create or u.Delete).IndexName
      if seen[iname] then
        validation(INVALID .. "Only one global secondary index update per index is allowed "
          .. "simultaneously. Index: %s", iname)
      end
      seen[iname] = true
      if u.Create then creates[#creates + 1] = u.Create end
      if u.Delete then deletes[#deletes + 1] = u.Delete end
    end
    if #creates + #deletes > 1 then
      errors.raise("LimitExceededException",
        "Subscriber limit exceeded: Only 1 online index can be created or deleted "
          .. "simultaneously per table")
    end
  end
  local stream = stream_spec(req.StreamSpecification)
  local t = now()
  local db_change -- what must change in the dynafile database
  local rec = catalog.update(name, function(r)
    if r.status ~= "ACTIVE" then
      errors.raise("ResourceInUseException", string_format(
        "Attempt to change a resource which is still in use: Table is being %s: %s",
        r.status == "CREATING" and "created" or r.status == "DELETING" and "deleted" or "updated",
          name))
    end
    local mode = req.BillingMode or r.billing
    if mode == "PAY_PER_REQUEST" and req.ProvisionedThroughput then
      validation(INVALID .. "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified "
        .. "when BillingMode is PAY_PER_REQUEST")
    end
    if mode == "PROVISIONED" and r.billing == "PAY_PER_REQUEST" then
      if not pt then
        validation(INVALID
          .. "ProvisionedThroughput must be specified when BillingMode is PROVISIONED")
      end
      for _, ix in pairs(r.gsi or {}) do
        local given
        for _, u in ipairs(gsi_updates or {}) do
          if u.Update and u.Update.IndexName == ix.name and u.Update.ProvisionedThroughput then
            given = true
          end
        end
        if not given then
          validation(INVALID .. "ProvisionedThroughput must be specified for index: %s", ix.name)
        end
      end
    end
    if pt and mode == "PROVISIONED" then
      if r.billing == "PROVISIONED" and pt.read == r.read and pt.write == r.write
          and (not req.BillingMode or req.BillingMode == r.billing) and not gsi_updates
          and not stream then
        validation("The provisioned throughput for the table will not change. The requested value "
          .. "equals the current value. Current ReadCapacityUnits provisioned for the table: %d. "
          .. "Requested ReadCapacityUnits: %d. Current WriteCapacityUnits provisioned for the "
          .. "table: %d. Requested WriteCapacityUnits: %d. Refer to the Amazon DynamoDB Developer "
          .. "Guide for current limits and how to request higher limits.", r.read, pt.read,
          r.write, pt.write)
      end
      if r.read and (pt.read > r.read or pt.write > r.write) then r.last_increase = t end
      if r.read and (pt.read < r.read or pt.write < r.write) then
        r.last_decrease = t
        r.decreases = (r.decreases or 0) + 1
      end
      r.read, r.write = pt.read, pt.write
    end
    if req.BillingMode and req.BillingMode ~= r.billing then
      r.billing = req.BillingMode
      r.billing_set = true
      if r.billing == "PAY_PER_REQUEST" then r.billing_changed = t end
    end
    if req.BillingMode then r.billing_set = true end
    -- attribute definitions: new ones are for new indexes
    local defs = {}
    for _, a in ipairs(r.attrs) do defs[a[1]] = a[2] end
    if req.AttributeDefinitions then
      for _, a in ipairs(req.AttributeDefinitions) do
        local old = defs[a.AttributeName]
        if old and old ~= a.AttributeType then
          validation(INVALID .. "Cannot change the type of an existing attribute: %s",
            a.AttributeName)
        end
      end
    end
    for _, u in ipairs(gsi_updates or {}) do
      if u.Update then
        local ix = index_by_name(r, u.Update.IndexName)
        if not ix then
          errors.not_found("Requested resource not found: Index: " .. u.Update.IndexName
            .. " not found for table: " .. name)
        end
        if r.billing == "PAY_PER_REQUEST" and u.Update.ProvisionedThroughput then
          validation(INVALID .. "ProvisionedThroughput should not be specified for index: %s when "
            .. "BillingMode is PAY_PER_REQUEST", ix.name)
        end
        local ipt = throughput_of(u.Update.ProvisionedThroughput)
        if ipt then ix.read, ix.write = ipt.read, ipt.write end
        if u.Update.OnDemandThroughput then
          ix.on_demand = { read = u.Update.OnDemandThroughput.MaxReadRequestUnits,
            write = u.Update.OnDemandThroughput.MaxWriteRequestUnits }
        end
      elseif u.Delete then
        local ix = index_by_name(r, u.Delete.IndexName)
        if not ix then
          errors.not_found("Requested resource not found: Index: " .. u.Delete.IndexName
            .. " not found for table: " .. name)
        end
        r.gsi[ix.name] = nil
        db_change = { drop = ix.name }
      elseif u.Create then
        local c = u.Create
        if index_by_name(r, c.IndexName) or (r.lsi or {})[c.IndexName] then
          validation(INVALID .. "Attempting to create an index which already exists")
        end
        local all_defs, all_names = {}, {}
        for k, v in pairs(defs) do all_defs[k] = v end
        for _, a in ipairs(r.attrs) do all_names[#all_names + 1] = a[1] end
        for _, a in ipairs(req.AttributeDefinitions or {}) do
          if not all_defs[a.AttributeName] then all_names[#all_names + 1] = a.AttributeName end
          all_defs[a.AttributeName] = a.AttributeType
        end
        local ikeys = key_schema(c.KeySchema, all_defs, all_names)
        local proj = projection_of(c.Projection, c.IndexName)
        local ipt
        if r.billing == "PAY_PER_REQUEST" then
          if c.ProvisionedThroughput then
            validation(INVALID
              .. "ProvisionedThroughput should not be specified for index: %s when "
              .. "BillingMode is PAY_PER_REQUEST", c.IndexName)
          end
        else
          if not c.ProvisionedThroughput then
            validation(INVALID .. "ProvisionedThroughput must be specified for index: %s",
              c.IndexName)
          end
          ipt = throughput_of(c.ProvisionedThroughput)
        end
        local count = 0
        for _ in pairs(r.gsi or {}) do count = count + 1 end
        if count >= 20 then
          errors.raise("LimitExceededException",
            "Subscriber limit exceeded: GlobalSecondaryIndex count exceeds the per-table limit "
              .. "of 20")
        end
        for _, k in ipairs { ikeys.hash, ikeys.range } do
          if k and not defs[k.name] then
            defs[k.name] = k.type
            r.attrs[#r.attrs + 1] = { k.name, k.type }
          end
        end
        r.next_order = (r.next_order or 0) + 1
        r.gsi = r.gsi or {}
        local ix = { name = c.IndexName, kind = "gsi", keys = ikeys, projection = proj,
          order = r.next_order, status = "ACTIVE", read = ipt and ipt.read, write = ipt
            and ipt.write }
        r.gsi[c.IndexName] = ix
        db_change = { add = ix }
      end
    end
    if stream then
      local cur = r.stream
      if stream.enabled then
        if cur and cur.enabled then
          validation("Table already has an enabled stream: %s", M.table_arn(ctx, name)
            .. "/stream/" .. cur.label)
        end
        r.stream = { enabled = true, view = stream.view, label = iso8601_ms(t), created = t }
        db_change = db_change or {}
        db_change.stream = true
      else
        if not cur or not cur.enabled then
          validation("Table already has stream disabled or no stream: %s", name)
        end
        cur.enabled = false
        db_change = db_change or {}
        db_change.stream = false
      end
    end
    if req.SSESpecification then
      r.sse = req.SSESpecification.Enabled and { key = req.SSESpecification.KMSMasterKeyId } or nil
    end
    if req.DeletionProtectionEnabled ~= nil then
      r.deletion_protection = req.DeletionProtectionEnabled
    end
    if req.TableClass then r.table_class = req.TableClass end
    if req.OnDemandThroughput then
      r.on_demand = { read = req.OnDemandThroughput.MaxReadRequestUnits,
        write = req.OnDemandThroughput.MaxWriteRequestUnits }
    end
    if req.WarmThroughput then
      r.warm = { read = req.WarmThroughput.ReadUnitsPerSecond,
        write = req.WarmThroughput.WriteUnitsPerSecond }
    end
    if db_change then r.status = "UPDATING" end
    return db_change ~= nil
  end)
  local response_rec = rec
  if db_change then
    -- change the database (backfill a new index, drop one, switch the
    -- change log), then mark the table ACTIVE again
    catalog.forget(name)
    local ok, err = pcall(function()
      if db_change.add then
        local ix = db_change.add
        local db, msg, code = dynafile.open(catalog.path(name), { sync = catalog.state.sync,
          gsi = { [ix.name] = dynafile_index(ix) } })
        if not db then
          errors.raise("InternalServerError", string_format("cannot build index %s: %s (%s)",
            ix.name, tostring(msg), tostring(code)))
        end
        db:close()
      end
      if db_change.drop or db_change.stream ~= nil then
        local opts = { sync = catalog.state.sync }
        if db_change.stream ~= nil then opts.stream = db_change.stream and STREAM_KEEP or false end
        local db, msg, code = dynafile.open(catalog.path(name), opts)
        if not db then
          errors.raise("InternalServerError", string_format("cannot open table %s: %s (%s)",
            name, tostring(msg), tostring(code)))
        end
        if db_change.drop then
          local dok, dmsg, dcode = db:drop_index(db_change.drop)
          if not dok then
            db:close()
            errors.raise("InternalServerError", string_format("cannot drop index %s: %s (%s)",
              db_change.drop, tostring(dmsg), tostring(dcode)))
          end
        end
        db:close()
      end
    end)
    -- where a new stream starts, or an old one ends, in the change log
    local log_last
    if ok and db_change.stream ~= nil then
      local db = dynafile.open(catalog.path(name), { sync = catalog.state.sync })
      if db then
        local _
        _, log_last = require("dynafile.serve.streams").log_bounds(db)
        db:close()
      end
    end
    catalog.update(name, function(r)
      r.status = "ACTIVE"
      if not ok and db_change.add then r.gsi[db_change.add.name] = nil end
      if log_last and r.stream then
        if r.stream.enabled then
          r.stream.start_seq = log_last + 1
        else
          r.stream.end_seq = log_last
        end
      end
      return true
    end)
    if not ok then error(err, 0) end
    if db_change.add then
      -- the response shows the new index as DynamoDB does while it builds
      response_rec.gsi[db_change.add.name].status = "CREATING"
      response_rec.gsi[db_change.add.name].backfilling = true
    end
    if db_change.drop then
      response_rec.gsi[db_change.drop] = nil
    end
  end
  local _, db = catalog.table(name)
  return { TableDescription = M.describe(response_rec, ctx, db_change and "UPDATING" or "ACTIVE",
    db) }
end

-- ------------------------------------------------------------ TTL

local function update_ttl(req)
  local name = M.table_name(req.TableName)
  local spec = req.TimeToLiveSpecification
  local attr = spec.AttributeName
  local changed, prev
  catalog.update(name, function(r)
    prev = r.ttl
    if r.status ~= "ACTIVE" then
      errors.raise("ResourceInUseException", "Attempt to change a resource which is still in use: "
        .. "Table is being updated: " .. name)
    end
    local cur = r.ttl
    if spec.Enabled then
      if cur and cur.enabled then
        validation("TimeToLive is already enabled")
      end
      r.ttl = { enabled = true, attr = attr }
      changed = attr
    else
      if not cur or not cur.enabled then
        validation("TimeToLive is already disabled")
      end
      if cur.attr ~= attr then
        validation("TimeToLive is active on a different AttributeName: current AttributeName is "
          .. "%s", cur.attr)
      end
      r.ttl = { enabled = false }
      changed = false
    end
    return true
  end)
  local _, tdb = catalog.table(name)
  -- set, change or clear the attribute (items stop expiring when TTL is
  -- disabled); on failure the catalog gets its old setting back
  local ok, msg, code = tdb:set_ttl(changed or false)
  if not ok then
    catalog.update(name, function(r)
      r.ttl = prev
      return true
    end)
    errors.engine("cannot set the TTL attribute", msg, code)
  end
  return { TimeToLiveSpecification = { Enabled = spec.Enabled, AttributeName = attr } }
end

local function describe_ttl(req)
  local name = M.table_name(req.TableName)
  local rec = catalog.record(name)
  if not rec or rec.status == "CREATING" or rec.status == "DELETING" then
    errors.not_found("Requested resource not found: Table: " .. name .. " not found")
  end
  local ttl = rec.ttl
  if ttl and ttl.enabled then
    return { TimeToLiveDescription = { TimeToLiveStatus = "ENABLED", AttributeName = ttl.attr } }
  end
  return { TimeToLiveDescription = { TimeToLiveStatus = "DISABLED" } }
end

-- ------------------------------------------------------------ tags

local function tag_resource(req)
  local arn = req.ResourceArn
  local name = arn_table(arn)
  if #req.Tags == 0 then validation("Atleast one tag is required") end
  local ok, err = pcall(catalog.update, name, function(r)
    if r.status ~= "ACTIVE" and r.status ~= "UPDATING" then errors.not_found() end
    local tags = r.tags or {}
    for _, t in ipairs(req.Tags) do tags[t.Key] = t.Value end
    local n = 0
    for _ in pairs(tags) do n = n + 1 end
    if n > 50 then
      errors.raise("LimitExceededException", "Too many tags: a resource can have at most 50 tags")
    end
    r.tags = tags
  end)
  if not ok then
    if errors.is(err) and err.name == "ResourceNotFoundException" then
      errors.not_found("Requested resource not found: ResourcArn: " .. arn .. " not found")
    end
    error(err, 0)
  end
  return {}
end

local function untag_resource(req)
  local arn = req.ResourceArn
  local name = arn_table(arn)
  if #req.TagKeys == 0 then validation("Atleast one tag key is required") end
  local ok, err = pcall(catalog.update, name, function(r)
    if r.status ~= "ACTIVE" and r.status ~= "UPDATING" then errors.not_found() end
    local tags = r.tags or {}
    for _, k in ipairs(req.TagKeys) do tags[k] = nil end
    r.tags = tags
  end)
  if not ok then
    if errors.is(err) and err.name == "ResourceNotFoundException" then
      errors.not_found("Requested resource not found")
    end
    error(err, 0)
  end
  return {}
end

local function list_tags(req)
  local arn = req.ResourceArn
  local name = arn_table(arn)
  local rec = catalog.record(name)
  if not rec or rec.status == "CREATING" or rec.status == "DELETING" then
    errors.not_found("Requested resource not found: ResourcArn: " .. arn .. " not found")
  end
  local keys = {}
  for k in pairs(rec.tags or {}) do keys[#keys + 1] = k end
  table_sort(keys)
  local start = 1
  if req.NextToken then
    start = tonumber(req.NextToken)
    if not start or start < 1 or start ~= math_floor(start) then
      validation("Invalid NextToken")
    end
  end
  local out = {}
  for i = start, #keys do
    if #out == 10 and i <= #keys then
      return { Tags = out, NextToken = tostring(i) }
    end
    out[#out + 1] = { Key = keys[i], Value = rec.tags[keys[i]] }
  end
  return { Tags = json.list(out) }
end

-- ------------------------------------------------------------ misc

local function describe_endpoints(_, ctx)
  local host = ngx and ngx.var.http_host or ("dynamodb." .. ctx.region .. ".amazonaws.com")
  return { Endpoints = { { Address = host, CachePeriodInMinutes = 1440 } } }
end

local function describe_limits()
  return { AccountMaxReadCapacityUnits = 80000, AccountMaxWriteCapacityUnits = 80000,
    TableMaxReadCapacityUnits = 40000, TableMaxWriteCapacityUnits = 40000 }
end

local function continuous_backups(rec)
  return { ContinuousBackupsDescription = {
    ContinuousBackupsStatus = "ENABLED",
    PointInTimeRecoveryDescription = rec.pitr and {
      PointInTimeRecoveryStatus = "ENABLED", RecoveryPeriodInDays = rec.pitr_days or 35,
      EarliestRestorableDateTime = rec.pitr, LatestRestorableDateTime = now(),
    } or { PointInTimeRecoveryStatus = "DISABLED" },
  } }
end

local function describe_backups(req)
  local name = M.table_name(req.TableName)
  local rec = catalog.record(name)
  if not rec or rec.status ~= "ACTIVE" and rec.status ~= "UPDATING" then
    errors.raise("TableNotFoundException", "Table not found: " .. name)
  end
  return continuous_backups(rec)
end

local function update_backups(req)
  local name = M.table_name(req.TableName)
  local spec = req.PointInTimeRecoverySpecification
  local ok, rec = pcall(catalog.update, name, function(r)
    if spec.PointInTimeRecoveryEnabled then
      r.pitr = r.pitr or now()
      r.pitr_days = spec.RecoveryPeriodInDays or 35
    else
      r.pitr, r.pitr_days = nil, nil
    end
  end)
  if not ok then
    if errors.is(rec) and rec.name == "ResourceNotFoundException" then
      errors.raise("TableNotFoundException", "Table not found: " .. name)
    end
    error(rec, 0)
  end
  return continuous_backups(rec)
end

function M.register(ops)
  local D = ops.DynamoDB
  D.CreateTable = create_table
  D.DeleteTable = delete_table
  D.DescribeTable = describe_table
  D.ListTables = list_tables
  D.UpdateTable = update_table
  D.UpdateTimeToLive = update_ttl
  D.DescribeTimeToLive = describe_ttl
  D.TagResource = tag_resource
  D.UntagResource = untag_resource
  D.ListTagsOfResource = list_tags
  D.DescribeEndpoints = describe_endpoints
  D.DescribeLimits = describe_limits
  D.DescribeContinuousBackups = describe_backups
  D.UpdateContinuousBackups = update_backups
end

return M
