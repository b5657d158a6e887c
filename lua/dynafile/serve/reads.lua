--- dynafile.serve.reads: Query and Scan.
--
-- Both walk dynafile pages (db:query_page / db:scan_page, the table or an
-- index) in key order from ExclusiveStartKey and apply DynamoDB's rules on
-- the way: Limit counts the items *evaluated* (before FilterExpression),
-- a page stops once 1 MB of items has been read, ScannedCount and Count
-- are reported, Select chooses items, projections or only the count, and
-- LastEvaluatedKey (the table's and the index's key attributes of the
-- last item evaluated) is returned whenever the read stopped before the
-- end.
--
-- Scan segments: DynamoDB's Segment s of TotalSegments n is the s-th of n
-- ranges of the partition hash; dynafile's are the same ranges, numbered
-- from 1, up to 4096 of them.  Above 4096 segments each dynafile segment
-- is read whole by the first DynamoDB segment that maps to it, and the
-- other segments come back empty, so the union is still every item
-- exactly once.
--
-- Invariant: every request check happens before the first page is read.
-- @module dynafile.serve.reads

local errors = require "dynafile.serve.errors"
local catalog = require "dynafile.serve.catalog"
local values = require "dynafile.serve.values"
local size = require "dynafile.serve.size"
local capacity = require "dynafile.serve.capacity"
local expressions = require "dynafile.serve.expressions"
local tables = require "dynafile.serve.tables"
local legacy = require "dynafile.serve.legacy"
local json = require "dynafile.serve.json"
local itemjson = require "dynafile.serve.itemjson"
local types = require "dynafile.types"

local pairs, ipairs, type = pairs, ipairs, type
local table_concat = table.concat
local math_floor, math_ceil = math.floor, math.ceil

local M = {}

local validation = errors.validation
local tp = types.type

local PAGE_BYTES = 1024 * 1024
local CHUNK = 100

-- ------------------------------------------------------------ shared checks

local function check_select(req, indexed)
  local sel = req.Select
  local projected = req.ProjectionExpression ~= nil or req.AttributesToGet ~= nil
  if sel and sel ~= "SPECIFIC_ATTRIBUTES" and projected then
    local which = req.ProjectionExpression and "ProjectionExpression" or "AttributesToGet"
    if sel == "COUNT" then
      validation("1 validation error detected: Cannot specify the %s when choosing to get only "
        .. "the Count", which)
    end
    validation("1 validation error detected: Cannot specify the %s when choosing to get %s",
      which, sel)
  end
  if sel == "ALL_PROJECTED_ATTRIBUTES" and not indexed then
    validation("1 validation error detected: ALL_PROJECTED_ATTRIBUTES can be used only when "
      .. "Querying using an IndexName")
  end
  if sel == "SPECIFIC_ATTRIBUTES" and not projected then
    validation("1 validation error detected: Must specify the AttributesToGet or "
      .. "ProjectionExpression when choosing to get SPECIFIC_ATTRIBUTES")
  end
end

-- The index being read, or nil; raises DynamoDB's errors.
local function index_of(rec, req)
  local name = req.IndexName
  if not name then return nil end
  local ix = (rec.gsi or {})[name] or (rec.lsi or {})[name]
  if not ix then validation("The table does not have the specified index: %s", name) end
  if ix.kind == "gsi" and req.ConsistentRead then
    validation("Consistent reads are not supported on global secondary indexes")
  end
  if ix.kind == "gsi" and ix.status and ix.status ~= "ACTIVE" then
    validation("Cannot read from backfilling global secondary index: %s", name)
  end
  return ix
end

-- The key schema a read walks: the index's (an LSI: the table's hash key
-- and the index's range key) or the table's.
local function key_schema(rec, ix)
  if not ix then return rec.keys end
  if ix.kind == "lsi" then return { hash = rec.keys.hash, range = ix.keys.range } end
  return ix.keys
end

-- The attribute names of a LastEvaluatedKey: the table's keys plus the
-- index's.
local function start_key_names(rec, ix)
  local names = { rec.keys.hash.name }
  if rec.keys.range then names[#names + 1] = rec.keys.range.name end
  if ix then
    for _, k in pairs { ix.keys.hash, ix.keys.range } do
      local dup = false
      for _, n in ipairs(names) do if n == k.name then dup = true end end
      if not dup then names[#names + 1] = k.name end
    end
  end
  return names
end

local function type_of_name(rec, ix, name)
  for _, k in pairs { rec.keys.hash, rec.keys.range or false, ix and ix.keys.hash or false,
      ix and ix.keys.range or false } do
    if k and k.name == name then return k.type end
  end
  return nil
end

-- Check a decoded ExclusiveStartKey: exactly the start-key attributes,
-- of their types.
local function check_start_key(rec, ix, esk)
  local names = start_key_names(rec, ix)
  local n = 0
  for _ in pairs(esk) do n = n + 1 end
  if n ~= #names then validation("The provided starting key is invalid") end
  for _, name in ipairs(names) do
    local v = esk[name]
    if v == nil then validation("The provided starting key is invalid") end
    local t = tp(v)
    if t ~= type_of_name(rec, ix, name) then
      validation("The provided starting key is invalid: The provided key element does not "
        .. "match the schema")
    end
    if t ~= "N" then
      -- a partition key holds 2048 bytes, a sort key 1024
      local hash = name == rec.keys.hash.name or (ix and name == ix.keys.hash.name)
      if size.key(v) > (hash and size.MAX_HASH_KEY or size.MAX_RANGE_KEY) then
        validation("The provided starting key is invalid: One or more parameter values were "
          .. "invalid: %s", hash
          and "Size of hashkey has exceeded the maximum size limit of2048 bytes"
          or "Aggregated size of all range keys has exceeded the size limit of 1024 bytes")
      end
    end
  end
end

-- The default Select of an index read: ALL_PROJECTED_ATTRIBUTES, which is
-- the whole item for ALL projections.  ALL_ATTRIBUTES on an index that
-- projects less reads the items from the table (LSI) or is refused (GSI).
local function needs_table_read(req, ix)
  if not ix or req.Select ~= "ALL_ATTRIBUTES" then return false end
  if ix.projection.type == "ALL" then return false end
  if ix.kind == "gsi" then
    validation("One or more parameter values were invalid: Select type ALL_ATTRIBUTES is not "
      .. "supported for global secondary index %s because its projection type is not ALL", ix.name)
  end
  return true
end

-- Filters on key attributes are refused in Query (the key condition does
-- that job).
local function check_filter_keys(req, ks)
  if req.QueryFilter then
    for _, k in pairs { ks.hash, ks.range } do
      if req.QueryFilter[k.name] then
        validation("QueryFilter can only contain non-primary key attributes: Primary key "
          .. "attribute: %s", k.name)
      end
    end
  end
end

-- ------------------------------------------------------------ the read loop

-- The answer's items as JSON text, read with `fetch_json(start_after,
-- max, budget, want_last)` (page_fetcher over DB:_query_page_json or
-- _scan_page_json: the items' text from C) under the same rules as `walk` below, for reads
-- that take every item whole (no filter, no projection).  Returns the
-- texts of the items (each one or more items joined by commas; a list,
-- joined once into the answer), their number, scanned, bytes, last,
-- stopped.
local function walk_text(fetch_json, limit, start)
  local chunks, n, scanned, bytes = {}, 0, 0, 0
  local last, stopped = nil, false
  local after = start
  while true do
    local want = CHUNK
    if limit and limit - scanned < want then want = limit - scanned end
    local a, b, c, nk, _, lastit = fetch_json(after, want, PAGE_BYTES - bytes,
      limit ~= nil and want == limit - scanned)
    if type(a) == "string" then
      if b > 0 then
        n = n + 1
        chunks[n] = a
      end
      scanned, bytes = scanned + b, bytes + c
      if lastit then last = lastit end
      if (limit and scanned >= limit) or bytes >= PAGE_BYTES then
        stopped = true
        break
      end
    else
      -- an item needed the Lua path: the page came as tables
      nk = b
      for i = 1, #a do
        local it = a[i]
        scanned = scanned + 1
        bytes = bytes + size.item(it)
        last = it
        n = n + 1
        chunks[n] = itemjson.item(it)
        if (limit and scanned >= limit) or bytes >= PAGE_BYTES then
          stopped = true
          break
        end
      end
      if stopped then break end
    end
    if nk == nil then break end
    after = nk
  end
  return chunks, n, scanned, bytes, last, stopped
end

-- Read from `fetch(start_after, max)` (a page function) under DynamoDB's
-- rules; returns the response fields (the answer's text, unless
-- ctx.internal: then a table).  fetch_json, when given, is the same read
-- with the items' text written by C (walk_text), used when the answer is
-- text and every item goes into it whole.
local function walk(fetch, rec, ix, req, p, start, name, db, ctx, fetch_json)
  local limit = req.Limit
  local count_only = req.Select == "COUNT"
  local table_read = needs_table_read(req, ix)
  local filter, project = p.filter, p.project
  local items, scanned, count, bytes = {}, 0, 0, 0
  local last, stopped = nil, false
  local after = start
  local texts, ntexts
  if fetch_json and not ctx.internal and not filter and not project and not table_read
      and not count_only then
    texts, ntexts, scanned, bytes, last, stopped = walk_text(fetch_json, limit, start)
    count = scanned
  end
  while not texts do
    local want = CHUNK
    if limit and limit - scanned < want then want = limit - scanned end
    local page, nk = fetch(after, want)
    for i = 1, #page do
      local it = page[i]
      if table_read then it = db:get_item(values.key_of(rec, it)) or it end
      scanned = scanned + 1
      bytes = bytes + size.item(it)
      last = it
      if not filter or filter(it) then
        count = count + 1
        if not count_only then
          items[#items + 1] = project and project(it) or it
        end
      end
      if (limit and scanned >= limit) or bytes >= PAGE_BYTES then
        -- DynamoDB stops here and returns the resume key, whether or not
        -- anything follows
        stopped = true
        break
      end
    end
    if stopped or nk == nil then break end
    after = nk
  end
  local lek
  if stopped and last then
    lek = {}
    for _, n in ipairs(start_key_names(rec, ix)) do lek[n] = last[n] end
  end
  local cap
  local u = capacity.usage(req.ReturnConsumedCapacity)
  if u then
    local units = math_ceil(bytes / 4096)
    if units < 1 then units = 1 end
    if not req.ConsistentRead then units = units / 2 end
    if ix then
      capacity.add_index_read(u, name, ix.name, ix.kind, units)
    else
      capacity.add(u, name, "read", units)
    end
    cap = capacity.report(u, name)
  end
  if not ctx.internal then
    -- the answer as text, written straight from the items
    local buf, n = { "{" }, 1
    if texts then
      -- the items' texts go into the answer as they are (one copy, by
      -- the table.concat below)
      buf[2] = '"Items":['
      n = 2
      for i = 1, ntexts do
        if i > 1 then
          n = n + 1
          buf[n] = ","
        end
        n = n + 1
        buf[n] = texts[i]
      end
      n = n + 1
      buf[n] = "],"
    elseif not count_only then
      buf[2] = '"Items":'
      n = itemjson.put_items(items, buf, 2) + 1
      buf[n] = ","
    end
    buf[n + 1] = '"Count":'
    buf[n + 2] = count
    buf[n + 3] = ',"ScannedCount":'
    buf[n + 4] = scanned
    n = n + 4
    if lek then
      buf[n + 1] = ',"LastEvaluatedKey":'
      n = itemjson.put_item(lek, buf, n + 1)
    end
    if cap then
      buf[n + 1] = ',"ConsumedCapacity":'
      buf[n + 2] = json.encode(cap)
      n = n + 2
    end
    buf[n + 1] = "}"
    return table_concat(buf, "", 1, n + 1)
  end
  local res = { Count = count, ScannedCount = scanned, ConsumedCapacity = cap }
  if not count_only then
    local out = {}
    for i, it in ipairs(items) do out[i] = values.encode_item(it) end
    res.Items = json.list(out)
  end
  if lek then res.LastEvaluatedKey = values.encode_item(lek) end
  return res
end

-- The page function of a read: fn(db, arg, opts, budget, want_last) with
-- opts' start_after and limit set; the engine's failure raised.  For walk,
-- fn is db.query_page or a scan_page (budget and want_last are not
-- passed on); for walk_text, db._query_page_json or a _scan_page_json.
local function page_fetcher(db, fn, arg, opts)
  return function(after, max, budget, want_last)
    opts.start_after = after
    opts.limit = max
    local a, b, c, d, e, f = fn(db, arg, opts, budget, want_last)
    if a == nil then
      errors.engine("the table cannot be read", b, c)
    end
    return a, b, c, d, e, f
  end
end

-- ------------------------------------------------------------ Query

-- Does a key satisfy the sort-key condition (for ExclusiveStartKey)?
local function in_range(kc, v)
  if not kc.cond then return true end
  local op = ({ eq = "EQ", lt = "LT", le = "LE", gt = "GT", ge = "GE", between = "BETWEEN",
    begins_with = "BEGINS_WITH" })[kc.cond]
  return legacy.test(op, v, { kc.lo, kc.hi })
end

local function query(req, ctx)
  local name = tables.table_name(req.TableName)
  local esk = req.ExclusiveStartKey and values.item(req.ExclusiveStartKey)
  if req.KeyConditions == nil and req.KeyConditionExpression == nil then
    validation("Either the KeyConditions or KeyConditionExpression parameter must be specified "
      .. "in the request.")
  end
  local p = expressions.prepare(req, "Query")
  local rec, db = catalog.table(name)
  local ix = index_of(rec, req)
  check_select(req, ix ~= nil)
  local ks = key_schema(rec, ix)
  local kc = p.key_condition(ks)
  if p.finish then p.finish() end
  check_filter_keys(req, ks)
  if tp(kc.pk) ~= ks.hash.type then
    validation("One or more parameter values were invalid: Condition parameter type does not "
      .. "match schema type")
  end
  values.check_key_size(kc.pk, true)
  if kc.cond and ks.range then
    for _, v in ipairs { kc.lo, kc.hi } do
      if v ~= nil then values.check_key_size(v, false) end
      if v ~= nil and tp(v) ~= ks.range.type then
        validation("One or more parameter values were invalid: Condition parameter type does "
          .. "not match schema type")
      end
    end
  end
  if esk then
    check_start_key(rec, ix, esk)
    if not legacy.equal(esk[ks.hash.name], kc.pk) then
      validation("The provided starting key is outside query boundaries based on provided "
        .. "conditions")
    end
    if ks.range and kc.cond and not in_range(kc, esk[ks.range.name]) then
      validation("The provided starting key does not match the range key predicate")
    end
  end
  local opts = { index = ix and ix.name, scan_index_forward = req.ScanIndexForward ~= false }
  if kc.cond == "between" then
    opts.between = { kc.lo, kc.hi }
  elseif kc.cond then
    opts[kc.cond] = kc.lo
  end
  local fetch = page_fetcher(db, db.query_page, kc.pk, opts)
  local fetch_json = page_fetcher(db, db._query_page_json, kc.pk, opts)
  return walk(fetch, rec, ix, req, p, esk, name, db, ctx, fetch_json)
end

-- ------------------------------------------------------------ Scan

-- dynafile's segment (1-based, at most 4096) for DynamoDB's Segment of
-- TotalSegments, or false when this segment reads nothing (see above).
local MAX_SEGMENTS = 4096
local function segment_of(s, n)
  if n <= MAX_SEGMENTS then return s + 1, n end
  local k = math_floor(s * MAX_SEGMENTS / n)
  -- the first DynamoDB segment mapping to dynafile segment k reads it
  local first = math_ceil(k * n / MAX_SEGMENTS)
  if first ~= s then return false end
  return k + 1, MAX_SEGMENTS
end

local function scan(req, ctx)
  local name = tables.table_name(req.TableName)
  local esk = req.ExclusiveStartKey and values.item(req.ExclusiveStartKey)
  local seg, total = req.Segment, req.TotalSegments
  if seg ~= nil and total == nil then
    validation("The TotalSegments parameter is required but was not present in the request when "
      .. "Segment parameter is present")
  end
  if total ~= nil and seg == nil then
    validation("The Segment parameter is required but was not present in the request when "
      .. "parameter TotalSegments is present")
  end
  if seg and seg >= total then
    validation("The Segment parameter is zero-based and must be less than parameter "
      .. "TotalSegments: Segment: %d is not less than TotalSegments: %d", seg, total)
  end
  local p = expressions.prepare(req, "Scan")
  local rec, db = catalog.table(name)
  local ix = index_of(rec, req)
  check_select(req, ix ~= nil)
  if esk then check_start_key(rec, ix, esk) end
  local opts = { index = ix and ix.name }
  if total then
    local k, n = segment_of(seg, total)
    if not k then
      return walk(function() return {}, nil end, rec, ix, req, p, nil, name, db, ctx)
    end
    opts.segment, opts.segments = k, n
  end
  local fetch = page_fetcher(db, function(d, _, o) return d:scan_page(o) end, nil, opts)
  local fetch_json = page_fetcher(db, function(d, _, o, budget, want_last)
    return d:_scan_page_json(o, budget, want_last)
  end, nil, opts)
  return walk(fetch, rec, ix, req, p, esk, name, db, ctx, fetch_json)
end

function M.register(ops)
  ops.DynamoDB.Query = query
  ops.DynamoDB.Scan = scan
end

M.segment_of = segment_of

return M
