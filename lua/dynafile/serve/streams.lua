--- dynafile.serve.streams: DynamoDB Streams -- ListStreams, DescribeStream,
-- GetShardIterator and GetRecords -- on each table's change log.
--
-- A table with StreamSpecification enabled keeps dynafile's change log on
-- with 24 hours of retention: every change, in commit order across all
-- workers, with its old and new item.  Its stream has one shard; sequence
-- numbers are the log's (consecutive) numbers, written as DynamoDB's
-- 21-digit decimal strings.  The stream's label (its creation time) and
-- the first sequence number that belongs to it are kept in the catalog
-- record, so re-enabling a stream starts a new one.  Records carry the
-- images the StreamViewType asks for; TTL deletions carry DynamoDB's
-- service userIdentity.
--
-- Shard iterators are opaque strings holding the table, the stream label,
-- the next sequence number to read and when they were made (they expire
-- after 15 minutes, as DynamoDB's do).
--
-- Invariant: a record is served only once its transaction committed (the
-- log is written in the item's own transaction), never twice to a reader
-- that follows NextShardIterator.
-- @module dynafile.serve.streams

local ddbjson = require "dynafile.ddbjson"
local errors = require "dynafile.serve.errors"
local catalog = require "dynafile.serve.catalog"
local values = require "dynafile.serve.values"
local size = require "dynafile.serve.size"
local tables = require "dynafile.serve.tables"
local json = require "dynafile.serve.json"

local ngx = ngx -- luacheck: globals ngx
local ipairs, tostring, tonumber, pcall = ipairs, tostring, tonumber, pcall
local string_format, string_match = string.format, string.match
local math_floor = math.floor

local M = {}

local validation = errors.validation
local ITERATOR_SECONDS = 15 * 60

local function now()
  return ngx and ngx.now() or os.time()
end

local function seq_string(n)
  return string_format("%021d", n)
end

local function shard_id(rec)
  return "shardId-00000000000000000001-" .. rec.id:sub(1, 8)
end

local function stream_arn(ctx, rec)
  return tables.table_arn(ctx, rec.name) .. "/stream/" .. rec.stream.label
end

--- Read the change log: records after `after`, all writers.
local function read_log(db, after, max)
  if db.read_stream then return db:read_stream(after, max) end
  return db._c:stream_read(after, max, true)
end

local function log_bounds(db)
  -- a negative `after` asks the binding for the bounds only
  local _, _, first, last = db._c:stream_read(-1, 1)
  return first or 0, last or 0
end
M.log_bounds = log_bounds

-- The table record and handle of a stream ARN; ResourceNotFoundException
-- when the ARN names no stream.
local function resolve(arn)
  local name, label = string_match(arn,
    "^arn:[^:]+:dynamodb:[^:]*:[^:]*:table/([^/]+)/stream/(.+)$")
  if not name then
    validation("Invalid StreamArn")
  end
  local rec = catalog.record(name)
  if not rec or not rec.stream or rec.stream.label ~= label
      or rec.status == "CREATING" or rec.status == "DELETING" then
    errors.not_found("Requested resource not found: Stream: " .. arn .. " not found")
  end
  local _, db = catalog.table(name)
  return rec, db
end

-- ------------------------------------------------------------ ListStreams

local function list_streams(req, ctx)
  local want = req.TableName and tables.table_name(req.TableName)
  local limit = req.Limit or 100
  local out = {}
  local names = catalog.names()
  local started = req.ExclusiveStartStreamArn == nil
  local last
  for _, n in ipairs(names) do
    if not want or n == want then
      local rec = catalog.record(n)
      if rec and rec.stream and rec.stream.label and rec.status ~= "DELETING" then
        local arn = stream_arn(ctx, rec)
        if started then
          if #out == limit then
            last = out[#out].StreamArn
            break
          end
          out[#out + 1] = { StreamArn = arn, TableName = n, StreamLabel = rec.stream.label }
        elseif arn == req.ExclusiveStartStreamArn then
          started = true
        end
      end
    end
  end
  local res = { Streams = json.list(out) }
  if last then res.LastEvaluatedStreamArn = last end
  return res
end

-- ------------------------------------------------------------ DescribeStream

local function describe_stream(req, _)
  local rec, db = resolve(req.StreamArn)
  local s = rec.stream
  local first, last = log_bounds(db)
  local start = s.start_seq or 1
  if first > start then start = first end
  local shard = {
    ShardId = shard_id(rec),
    SequenceNumberRange = { StartingSequenceNumber = seq_string(start) },
  }
  if not s.enabled then
    shard.SequenceNumberRange.EndingSequenceNumber = seq_string(s.end_seq or last)
  end
  local shards = { shard }
  if req.ExclusiveStartShardId and req.ExclusiveStartShardId == shard.ShardId then shards = {} end
  local keys = { { AttributeName = rec.keys.hash.name, KeyType = "HASH" } }
  if rec.keys.range then keys[2] = { AttributeName = rec.keys.range.name, KeyType = "RANGE" } end
  return { StreamDescription = {
    StreamArn = req.StreamArn,
    StreamLabel = s.label,
    StreamStatus = s.enabled and "ENABLED" or "DISABLED",
    StreamViewType = s.view,
    CreationRequestDateTime = s.created or rec.created,
    TableName = rec.name,
    KeySchema = keys,
    Shards = json.list(shards),
  } }
end

-- ------------------------------------------------------------ iterators

local function encode_iterator(rec, seq)
  local raw = table.concat({ rec.name, rec.id, rec.stream.label, tostring(seq),
    string_format("%.3f", now()) }, "|")
  return ddbjson.base64_encode(raw)
end

local function decode_iterator(it)
  local ok, raw = pcall(ddbjson.base64_decode, it)
  if not ok or not raw then validation("Invalid ShardIterator") end
  local name, id, label, seq, made = string_match(raw, "^([^|]+)|([^|]+)|([^|]+)|(%d+)|([%d.]+)$")
  if not name then validation("Invalid ShardIterator") end
  return name, id, label, tonumber(seq), tonumber(made)
end

local function get_shard_iterator(req, _)
  local rec, db = resolve(req.StreamArn)
  if req.ShardId ~= shard_id(rec) then
    errors.not_found("Requested resource not found: Shard does not exist")
  end
  local t = req.ShardIteratorType
  local first, last = log_bounds(db)
  local start = rec.stream.start_seq or 1
  local trim = first > start and first or start
  local pos
  if t == "TRIM_HORIZON" then
    pos = trim
  elseif t == "LATEST" then
    pos = last + 1
    if pos < start then pos = start end
  else
    local sn = req.SequenceNumber
    if not sn then
      validation("SequenceNumber must be provided for ShardIteratorType %s", t)
    end
    local n = tonumber(sn)
    if not n or not string_match(sn, "^%d+$") then
      validation("Invalid SequenceNumber: %s", sn)
    end
    pos = t == "AT_SEQUENCE_NUMBER" and n or n + 1
    if n < trim and last >= trim then
      errors.raise("TrimmedDataAccessException", string_format(
        "Attempted to access data that is beyond the trim horizon: SequenceNumber %s", sn))
    end
    if n < start then pos = start end
  end
  return { ShardIterator = encode_iterator(rec, pos) }
end

-- ------------------------------------------------------------ GetRecords

local SERVICE_IDENTITY = { PrincipalId = "dynamodb.amazonaws.com", Type = "Service" }

local function record_of(rec, ev, ctx)
  local item = ev.new or ev.old
  local key = values.key_of(rec, item)
  local name = ev.action == "DELETE" and "REMOVE" or (ev.old and "MODIFY" or "INSERT")
  local view = rec.stream.view
  local d = {
    ApproximateCreationDateTime = math_floor(ev.time or now()),
    Keys = values.encode_item(key),
    SequenceNumber = seq_string(ev.seq),
    StreamViewType = view,
  }
  local bytes = size.item(key)
  if (view == "NEW_IMAGE" or view == "NEW_AND_OLD_IMAGES") and ev.new then
    d.NewImage = values.encode_item(ev.new)
    bytes = bytes + size.item(ev.new)
  end
  if (view == "OLD_IMAGE" or view == "NEW_AND_OLD_IMAGES") and ev.old then
    d.OldImage = values.encode_item(ev.old)
    bytes = bytes + size.item(ev.old)
  end
  d.SizeBytes = bytes
  local r = {
    eventID = string_format("%s%021d", rec.id:sub(1, 11), ev.seq),
    eventName = name,
    eventVersion = "1.1",
    eventSource = "aws:dynamodb",
    awsRegion = ctx.region,
    dynamodb = d,
  }
  if ev.expired then r.userIdentity = SERVICE_IDENTITY end
  return r
end

local function get_records(req, ctx)
  local name, id, label, pos, made = decode_iterator(req.ShardIterator)
  if now() - made > ITERATOR_SECONDS then
    errors.raise("ExpiredIteratorException", "Iterator expired. The iterator was created at time "
      .. os.date("!%a %b %d %H:%M:%S UTC %Y", math_floor(made)))
  end
  local rec = catalog.record(name)
  if not rec or rec.id ~= id or not rec.stream or rec.stream.label ~= label then
    errors.not_found("Requested resource not found: Stream: arn:aws:dynamodb:" .. ctx.region
      .. ":" .. ctx.account .. ":table/" .. name .. "/stream/" .. label .. " not found")
  end
  local _, db = catalog.table(name)
  local limit = req.Limit or 1000
  local first, last = log_bounds(db)
  if pos < first and first > 0 and pos <= last then
    errors.raise("TrimmedDataAccessException",
      "Attempted to access data that is beyond the trim horizon")
  end
  local stop = rec.stream.enabled and math.huge or (rec.stream.end_seq or last)
  local records = {}
  local after = pos - 1
  local bytes = 0
  while #records < limit do
    local evs, nxt = read_log(db, after, limit - #records)
    if not evs then
      errors.raise("InternalServerError", "the change log cannot be read: " .. tostring(nxt))
    end
    if #evs == 0 then break end
    for _, ev in ipairs(evs) do
      if ev.seq > stop then break end
      records[#records + 1] = record_of(rec, ev, ctx)
      pos = ev.seq + 1
      bytes = bytes + records[#records].dynamodb.SizeBytes
      if #records >= limit or bytes >= 1024 * 1024 then break end
    end
    if #records >= limit or bytes >= 1024 * 1024 or (evs[#evs].seq or 0) > stop then break end
    after = nxt
  end
  local res = { Records = json.list(records) }
  if rec.stream.enabled or pos <= stop then
    res.NextShardIterator = encode_iterator(rec, pos)
  end
  return res
end

function M.register(ops)
  local S = ops.Streams
  S.ListStreams = list_streams
  S.DescribeStream = describe_stream
  S.GetShardIterator = get_shard_iterator
  S.GetRecords = get_records
end

return M
