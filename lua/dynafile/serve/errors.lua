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

local setmetatable, getmetatable, error, type = setmetatable, getmetatable, error, type
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
}
M.TYPES = TYPES

local Err = {}
Err.__index = Err
Err.__tostring = function(e) return e.name .. ": " .. (e.message or "") end

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
