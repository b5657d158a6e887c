--- dynafile.serve.json: request and response bodies, with lua-cjson.
--
-- Bodies are DynamoDB JSON, whose numbers are strings, so cjson never
-- rounds an item value; the numbers it does parse (Limit, Segment, ...)
-- are parameters that fit a double.  Two things cjson cannot express on
-- its own are handled here:
--
-- * an empty JSON array: a response puts `json.EMPTY_ARRAY` where a list
--   may be empty, and `encode` writes `[]` for it (cjson would write
--   `{}`, which SDKs reject where they expect a list);
-- * JSON null: `json.null` is cjson's null value; request readers treat it
--   as an absent parameter.
--
-- Invariant: `decode` never raises; it returns nil and DynamoDB's
-- SerializationException text for a body that is not a JSON object.
-- @module dynafile.serve.json

local cjson_module = require "cjson"

local type, tostring, pcall, next = type, tostring, pcall, next
local string_find, string_gsub, string_byte = string.find, string.gsub, string.byte
local io_open = io.open

local M = {}

-- A private cjson instance, so our settings do not change other users'.
local cjson = cjson_module.new()
cjson.decode_invalid_numbers(false) -- NaN, Infinity, 0x10 are not JSON
cjson.encode_invalid_numbers(false)
cjson.decode_max_depth(1000)
cjson.encode_max_depth(1000)
cjson.encode_number_precision(14)
cjson.encode_sparse_array(false, 0, 0)

M.null = cjson.null

-- The empty array marker: a string no request can make collide with
-- (random, from the kernel), encoded by cjson as a JSON string and then
-- replaced by [].
local function random_hex(n)
  local f = io_open("/dev/urandom", "rb")
  local s = f and f:read(n) or tostring({}) .. tostring(os.time())
  if f then f:close() end
  return (string_gsub(s, ".", function(c) return ("%02x"):format(string_byte(c)) end))
end
local MARK = "\1df-empty-array-" .. random_hex(12) .. "\1"
local MARK_JSON = cjson.encode(MARK)
local MARK_PATTERN = MARK_JSON:gsub("%p", "%%%0")

--- The value that encodes as an empty JSON array.
M.EMPTY_ARRAY = MARK

--- A list for the encoder: t itself, or EMPTY_ARRAY when t is empty.
function M.list(t)
  if t[1] == nil then return MARK end
  return t
end

--- The list behind a value made by `list` (an empty table for the empty
-- marker), for code that reads responses it built.
function M.items(v)
  if v == nil or v == MARK then return {} end
  return v
end

--- Encode a response body.
-- @tparam table v the body
-- @treturn string|nil the JSON text
-- @treturn string the reason on failure
function M.encode(v)
  local ok, s = pcall(cjson.encode, v)
  if not ok then return nil, tostring(s) end
  if string_find(s, MARK_JSON, 1, true) then
    s = string_gsub(s, MARK_PATTERN, "[]")
  end
  return s
end

-- Is s valid UTF-8?  (dynafile.json's check: only bodies holding bytes
-- above 127 are walked.)
local valid_utf8 = require("dynafile.json").valid_utf8

--- Decode a request body.
-- @tparam string s the body
-- @treturn table|nil the object
-- @treturn string the SerializationException message on failure (may be
--   nil: DynamoDB sends some without one)
function M.decode(s)
  if not valid_utf8(s) then return nil, "Invalid UTF-8 start byte in the request body" end
  local ok, v = pcall(cjson.decode, s)
  if not ok then return nil, nil end
  if type(v) ~= "table" then
    return nil, "Unexpected value type in payload"
  end
  if v[1] ~= nil then return nil, "Unrecognized collection type: a request is a JSON object" end
  return v
end

--- Whether a decoded table was a JSON array (a non-empty table with key 1;
-- an empty array and an empty object decode alike).
function M.is_array(t)
  return t[1] ~= nil or (next(t) == nil)
end

return M
