--- dynafile.serve.errors: DynamoDB's error responses.
--
-- An operation that fails raises an error value made here (`errors.raise`,
-- or one of the shortcuts); the request handler catches it and answers
-- with its HTTP status and the JSON body DynamoDB sends:
-- `{"__type": "<namespace>#<Name>", "message": "..."}` plus any extra
-- fields (CancellationReasons, Item).  Any other Lua error is a bug and
-- is answered as InternalServerError (500) after being logged.
--
-- Invariant: every error a client can see is listed in TYPES with its
-- namespace and status, so the wire form of each name is decided in one
-- place.
-- @module dynafile.serve.errors

local setmetatable, getmetatable, error, type, ipairs, tostring =
  setmetatable, getmetatable, error, type, ipairs, tostring
local string_format = string.format

local M = {}

local CORAL_SERVICE = "com.amazon.coral.service#"
local CORAL_VALIDATE = "com.amazon.coral.validate#"
local DYNAMODB = "com.amazonaws.dynamodb.v20120810#"

-- name -> {namespace, HTTP status}
local TYPES = {
  ValidationException = { CORAL_VALIDATE, 400 },
  SerializationException = { CORAL_SERVICE, 400 },
  UnknownOperationException = { CORAL_SERVICE, 400 },
  MissingAuthenticationTokenException = { CORAL_SERVICE, 400 },
  IncompleteSignatureException = { CORAL_SERVICE, 400 },
  InvalidSignatureException = { CORAL_SERVICE, 400 },
  UnrecognizedClientException = { CORAL_SERVICE, 400 },
  AccessDeniedException = { CORAL_SERVICE, 400 },
  RequestEntityTooLarge = { CORAL_SERVICE, 413 },
  ResourceNotFoundException = { DYNAMODB, 400 },
  ResourceInUseException = { DYNAMODB, 400 },
  ConditionalCheckFailedException = { DYNAMODB, 400 },
  TransactionCanceledException = { DYNAMODB, 400 },
  TransactionConflictException = { DYNAMODB, 400 },
  TransactionInProgressException = { DYNAMODB, 400 },
  IdempotentParameterMismatchException = { DYNAMODB, 400 },
  ItemCollectionSizeLimitExceededException = { DYNAMODB, 400 },
  LimitExceededException = { DYNAMODB, 400 },
  ProvisionedThroughputExceededException = { DYNAMODB, 400 },
  RequestLimitExceeded = { DYNAMODB, 400 },
  DuplicateItemException = { DYNAMODB, 400 },
  ExpiredIteratorException = { DYNAMODB, 400 },
  TrimmedDataAccessException = { DYNAMODB, 400 },
  PointInTimeRecoveryUnavailableException = { DYNAMODB, 400 },
  InternalServerError = { DYNAMODB, 500 },
  ServiceUnavailable = { CORAL_SERVICE, 503 },
}
M.TYPES = TYPES

local Err = {}
Err.__index = Err
Err.__tostring = function(e) return e.name .. ": " .. (e.message or "") end

-- dynafile's failure codes (the third value of a failed call, the fourth
-- column of DF_ERRORS in src/dynafile.h) -> the DynamoDB error answered.
-- A refusal of what the request holds is the client's fault (400); a
-- failure of the disk, the memory or the database file is the server's
-- (500), and a full reader table or a map that grew under another writer
-- passes (503, which the SDKs retry).
local ENGINE = {
  ValidationError = "ValidationException",
  InvalidArgument = "ValidationException",
  LimitExceeded = "ValidationException",
  ConditionalCheckFailed = "ConditionalCheckFailedException",
  TransactionCanceled = "TransactionCanceledException",
  NotFound = "ResourceNotFoundException",
  ReadersFull = "ServiceUnavailable",
  Retry = "ServiceUnavailable",
  IOError = "InternalServerError",
  Corrupt = "InternalServerError",
  VersionMismatch = "InternalServerError",
  ReadOnly = "InternalServerError",
  Forked = "InternalServerError",
  Closed = "InternalServerError",
  Busy = "InternalServerError",
  NoMemory = "InternalServerError",
}
M.ENGINE = ENGINE

--- Make an error value.
-- @tparam string name a key of TYPES
-- @tparam[opt] string message
-- @tparam[opt] table extra more fields of the response body
-- @treturn table the error value
function M.new(name, message, extra)
  local t = TYPES[name]
  if not t then error("errors.new: unknown error type " .. tostring(name), 2) end
  return setmetatable({ name = name, message = message, extra = extra,
    type = t[1] .. name, status = t[2] }, Err)
end

--- Raise a DynamoDB error.
-- @raise always
function M.raise(name, message, extra)
  error(M.new(name, message, extra), 0)
end

-- The engine's refusal of an item above the handle's max_item_size
-- (catalog opens every table with DynamoDB's 400 KB).
local ITEM_SIZE = "Item size has exceeded the maximum allowed size"

--- DynamoDB's ValidationException for an engine error that refuses an
-- item above 400 KB (a raised message or a returned one), or nil when
-- `msg` is another error.  DynamoDB words it differently for updates.
-- @param msg the engine's error (any value)
-- @tparam[opt] boolean for_update an UpdateItem's new item
-- @return the error value, or nil
function M.item_size(msg, for_update)
  if type(msg) ~= "string" or not string.find(msg, ITEM_SIZE, 1, true) then return nil end
  return M.new("ValidationException", for_update
    and "Item size to update has exceeded the maximum allowed size" or ITEM_SIZE)
end

--- Raise ValidationException with a message made by string.format.
-- @raise always
function M.validation(fmt, ...)
  if select("#", ...) > 0 then fmt = string_format(fmt, ...) end
  error(M.new("ValidationException", fmt), 0)
end

--- Raise SerializationException (a request body of the wrong shape).
-- @raise always
function M.serialization(msg)
  error(M.new("SerializationException", msg), 0)
end

--- Raise ResourceNotFoundException ("Requested resource not found",
-- DynamoDB's wording for a missing table or index).
-- @raise always
function M.not_found(msg)
  error(M.new("ResourceNotFoundException", msg or "Requested resource not found"), 0)
end

local INVALID = "One or more parameter values were invalid: "

--- Raise the DynamoDB error of a failure dynafile returned (`nil, msg,
-- code`): ENGINE decides its type; a code not listed is internal.
-- @tparam string what the operation ("PutItem", "the table cannot be read")
-- @tparam string msg dynafile's message
-- @tparam string code dynafile's code
-- @raise always
function M.engine(what, msg, code)
  local name = ENGINE[code] or "InternalServerError"
  if name == "ValidationException" then
    error(M.new(name, INVALID .. tostring(msg)), 0)
  end
  if name == "ConditionalCheckFailedException" then
    error(M.new(name, "The conditional request failed"), 0)
  end
  if name == "ResourceNotFoundException" then
    error(M.new(name, "Requested resource not found"), 0)
  end
  if name == "ServiceUnavailable" then
    error(M.new(name, "The server is busy; retry the request"), 0)
  end
  error(M.new(name, string_format("%s: %s (%s)", what, tostring(msg), tostring(code))), 0)
end

-- Messages of the misuse dynafile raises that are the server's own fault
-- (a closed or read-only handle, a write under this thread's own write
-- transaction, an option the server got wrong), never the request's.
local SERVER_MISUSE = {
  "handle is closed", "is read%-only", "already holds the write transaction",
  "unknown option", "options must be a table", "expected a database handle",
}

-- dynafile's words for a refusal -> DynamoDB's, where DynamoDB has its own
local TRANSLATE = {
  { "^attribute (.-) is too long for index (.-) %((%d+) bytes; a %a+ key holds at most (%d+)%)$",
    function(attr, index, n, max)
      return string_format("Size limit exceeded for Index Key %s Actual Size: %s bytes Max Size: "
        .. "%s bytes IndexName: %s", attr, n, max, index)
    end },
}

--- The DynamoDB error of a Lua error raised while serving a request, or
-- nil when it is a bug (answered as InternalServerError).  dynafile's
-- public functions raise "dynafile.<function>: <problem>" when the core
-- refuses a value (a key or index key too long, an item it cannot store):
-- the request's fault, a ValidationException with the problem, unless
-- the problem is one of SERVER_MISUSE.
-- @param e the error value
-- @treturn table|nil the error value to answer
function M.from_raise(e)
  if type(e) ~= "string" then return nil end
  local problem = e:match("^dynafile%.[%w_.]+: (.+)$")
    or e:match("^[^\n:]+:%d+: dynafile%.[%w_.]+: (.+)$")
  if not problem then return nil end
  for _, pat in ipairs(SERVER_MISUSE) do
    if problem:find(pat) then return nil end
  end
  for _, t in ipairs(TRANSLATE) do
    local a, b, c, d = problem:match(t[1])
    if a then
      problem = t[2](a, b, c, d)
      break
    end
  end
  if problem:sub(1, #INVALID) == INVALID then return M.new("ValidationException", problem) end
  return M.new("ValidationException", INVALID .. problem)
end

--- Whether v is an error value made by this module.
function M.is(v)
  return type(v) == "table" and getmetatable(v) == Err
end

--- The response body of an error, as a Lua table for the JSON encoder.
-- SerializationException carries its text as "Message", the others as
-- "message", as DynamoDB does.
function M.body(e)
  local b = { __type = e.type }
  if e.message ~= nil then
    if e.name == "SerializationException" then b.Message = e.message else b.message = e.message end
  end
  if e.extra then
    for k, v in pairs(e.extra) do b[k] = v end
  end
  return b
end

return M
