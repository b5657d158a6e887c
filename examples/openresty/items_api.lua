-- items_api.lua -- a small HTTP API over one dynafile database, for
-- OpenResty (or nginx with its Lua module).  See nginx.conf beside it.
--
--   PUT    /items/{pk}/{sk}   body: a JSON object; stores it under that key
--                             (200); with the header `If-None-Match: *` only
--                             if there is no such item yet (201, else 412)
--   GET    /items/{pk}/{sk}   the item as JSON, or 404
--   DELETE /items/{pk}/{sk}   204 (also when there was nothing to delete)
--   GET    /items/{pk}        query one partition, in sort-key order:
--                             ?begins_with=  ?limit= (default 100, max 1000)
--                             ?reverse=1  ?after={sk} (the previous page's
--                             "next")  ?filter={expression}
--                             -> {"items": [...], "next": sk or null}
--
-- Keys in the path are percent-decoded, so they may hold "/" as %2F.
--
-- Each nginx worker opens the database once, in init_worker_by_lua (after
-- the fork, as dynafile requires); every worker of the server shares the
-- one database directory, and LMDB serialises their writes.  dynafile
-- calls never yield, and they are short: an item read or write takes
-- microseconds, so they run inline in the request handler.
local dynafile = require "dynafile"
local cjson = require "cjson.safe"

local ngx = ngx -- luacheck: globals ngx
local type, pairs, ipairs, pcall = type, pairs, ipairs, pcall
local tonumber, tostring = tonumber, tostring
local setmetatable, getmetatable = setmetatable, getmetatable
local table_concat = table.concat

local M = {}

local db -- this worker's handle

--- Open the database (call from init_worker_by_lua).
function M.init_worker(path)
  local err, code
  db, err, code = dynafile.open(path, { pk = "PK", sk = "SK" })
  if not db then
    ngx.log(ngx.CRIT, "items_api: cannot open ", path, ": ", err, " (", code, ")")
  end
end

-- JSON and items differ in one value: JSON null is cjson.null, a stored
-- null is dynafile.null.  Items are small, so a copy is cheap.
local function convert(v, from, to)
  if v == from then return to end
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = convert(x, from, to) end
  return setmetatable(out, getmetatable(v))
end

local function to_json(v)
  return cjson.encode(convert(v, dynafile.null, cjson.null))
end

-- status, and a body: a table to encode or a JSON string.
local function reply(status, body)
  ngx.status = status
  if body ~= nil then
    ngx.header["Content-Type"] = "application/json"
    ngx.say(type(body) == "string" and body or to_json(body))
  end
  return ngx.exit(status)
end

local function fail(status, message, code)
  return reply(status, { error = message, code = code })
end

-- Expected failures from dynafile (nil, message, code) as HTTP statuses.
local STATUS = {
  ConditionalCheckFailed = 412,
  ValidationError = 400,
}

local function read_body()
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if not body then
    local file = ngx.req.get_body_file()
    if file then
      local f = io.open(file, "rb")
      if f then
        body = f:read("*a")
        f:close()
      end
    end
  end
  return body
end

-- Run a dynafile call; misuse it raises (a key too long, an attribute of
-- a type JSON cannot give...) is the client's fault here: 400.
local function call(fn, ...)
  local ok, a, b, c = pcall(fn, ...)
  if not ok then
    return nil, tostring(a):gsub("^.-dynafile%.", "dynafile."), "ValidationError"
  end
  return a, b, c
end

local function put(pk, sk)
  local item = cjson.decode(read_body() or "")
  if type(item) ~= "table" then return fail(400, "the body must be a JSON object") end
  item = convert(item, cjson.null, dynafile.null)
  item.PK, item.SK = pk, sk
  local opts
  if ngx.var.http_if_none_match == "*" then opts = { condition = "not exists(PK)" } end
  local ok, err, code = call(db.put_item, db, item, opts)
  if not ok then return fail(STATUS[code] or 500, err, code) end
  return reply(opts and 201 or 200, { ok = true })
end

local function get(pk, sk)
  local item, err, code = call(db.get_item, db, { PK = pk, SK = sk })
  if err then return fail(STATUS[code] or 500, err, code) end
  if not item then return fail(404, "no such item") end
  return reply(200, item)
end

local function delete(pk, sk)
  local ok, err, code = call(db.delete_item, db, { PK = pk, SK = sk })
  if not ok then return fail(STATUS[code] or 500, err, code) end
  return reply(204)
end

local function query(pk)
  local args = ngx.req.get_uri_args()
  local limit = tonumber(args.limit) or 100
  if limit < 1 or limit > 1000 or limit % 1 ~= 0 then
    return fail(400, "limit must be an integer in 1..1000")
  end
  local opts = { limit = limit }
  if type(args.begins_with) == "string" then opts.begins_with = args.begins_with end
  if args.reverse == "1" or args.reverse == "true" then opts.scan_index_forward = false end
  if type(args.after) == "string" then opts.start_after = { PK = pk, SK = args.after } end
  if type(args.filter) == "string" then opts.filter = args.filter end
  -- query_page returns nil, message, "ValidationError" for a filter that
  -- does not parse.
  local items, next_key, code = call(db.query_page, db, pk, opts)
  if not items then return fail(STATUS[code] or 500, next_key, code) end
  -- Written by hand so that no items is [] with every cjson version.
  local parts = {}
  for i, item in ipairs(items) do parts[i] = to_json(item) end
  return reply(200, '{"items":[' .. table_concat(parts, ",") .. '],"next":'
                    .. to_json(next_key and next_key.SK or dynafile.null) .. "}")
end

--- The content handler for /items/.
function M.handle()
  if not db then return fail(503, "the database is not open (see the error log)") end
  -- The raw URI, so that %2F inside a key is not taken for a separator.
  local path = ngx.var.request_uri:match("^[^?]*")
  local rest = path:match("^/items/(.*)$")
  if not rest then return fail(404, "not found") end
  local p, s = rest:match("^([^/]+)/([^/]+)$")
  if not p then p = rest:match("^([^/]+)$") end
  if not p then return fail(404, "use /items/{pk} or /items/{pk}/{sk}") end
  local pk = ngx.unescape_uri(p)
  local sk = s and ngx.unescape_uri(s)
  local method = ngx.req.get_method()
  if sk then
    if method == "PUT" then return put(pk, sk) end
    if method == "GET" then return get(pk, sk) end
    if method == "DELETE" then return delete(pk, sk) end
  elseif method == "GET" then
    return query(pk)
  end
  ngx.header["Allow"] = sk and "GET, PUT, DELETE" or "GET"
  return fail(405, "method not allowed")
end

return M
