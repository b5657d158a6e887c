-- tests/nginx/api.lua -- the server side of tests/nginx.sh: a key-value API
-- over one dynafile database, served by several nginx workers, each with
-- a cache of items kept correct by the change feed (db:poll_stream).
--
--   PUT /kv/{k}?v={value}   store {PK = "p" .. k % 50, SK = k, v = value}
--   GET /kv/{k}             X-V: the value (through this worker's cache),
--                           404 when missing
--   GET /q/{p}              X-Items: "k=v,k=v,..." of partition p, from the
--                           database, in sort-key order
--   GET /verify?file={f}    check every "k value" line of file f through
--                           the cache: X-Worker, X-Checked, X-Bad, X-First
--
-- Every response carries X-Worker (ngx.worker.id()).  Values travel in
-- headers so that curl can print them next to the status (-w %header{}).
local dynafile = require "dynafile"

local ngx = ngx -- luacheck: globals ngx
local tonumber, tostring = tonumber, tostring
local table_concat = table.concat

local M = {}

local db          -- this worker's handle
local cache = {}  -- k -> value (false: known missing)
local polled = 0  -- events the feed delivered to this worker

--- Open the database, after the fork (init_worker_by_lua).
function M.init_worker(path)
  local err, code
  db, err, code = dynafile.open(path, {
    pk = "PK", sk = "SK", stream = { keep = 200000 },
  })
  if not db then
    ngx.log(ngx.CRIT, "api: cannot open ", path, ": ", err, " (", code, ")")
    return
  end
  -- every change, from this worker (at commit) or another (at a poll),
  -- drops the cached value
  db:add_stream_listener(function(ev)
    local item = ev.new or ev.old
    cache[item.SK] = nil
    polled = polled + 1
  end)
end

local function partition(k)
  return "p" .. (k % 50)
end

-- The value of key k as this worker serves it: the change feed first,
-- then the cache, then the database.
local function value_of(k)
  local n, missed = db:poll_stream()
  if n == nil then return nil, missed end
  if missed > 0 then cache = {} end
  local v = cache[k]
  if v == nil then
    local item, err, code = db:get_item { PK = partition(k), SK = k }
    if item == nil and code then return nil, err end
    v = item and item.v or false
    cache[k] = v
  end
  return v
end

local function fail(status, msg)
  ngx.status = status
  ngx.header["X-Error"] = msg
  ngx.exit(status)
end

function M.handle()
  ngx.header["X-Worker"] = ngx.worker.id()
  if not db then return fail(500, "no database") end
  local uri, method = ngx.var.uri, ngx.req.get_method()
  local k = tonumber(uri:match("^/kv/(%d+)$"))
  if k and method == "PUT" then
    local v = ngx.var.arg_v
    if not v then return fail(400, "no v") end
    local ok, err, code = db:put_item { PK = partition(k), SK = k, v = v }
    if not ok then return fail(503, tostring(code) .. " " .. tostring(err)) end
    ngx.header["X-V"] = v
    return ngx.exit(200)
  elseif k and method == "GET" then
    local v, err = value_of(k)
    if v == nil then return fail(503, tostring(err)) end
    if v == false then return ngx.exit(404) end
    ngx.header["X-V"] = v
    return ngx.exit(200)
  end
  local p = uri:match("^/q/(p%d+)$")
  if p and method == "GET" then
    local out = {}
    for item in db:query(p) do out[#out + 1] = item.SK .. "=" .. item.v end
    ngx.header["X-Items"] = table_concat(out, ",")
    return ngx.exit(200)
  end
  if uri == "/verify" then
    local f = io.open(ngx.var.arg_file or "", "r")
    if not f then return fail(400, "no file") end
    local checked, bad, first = 0, 0, nil
    for line in f:lines() do
      local key, want = line:match("^(%d+) (%S+)$")
      if key then
        local got = value_of(tonumber(key))
        checked = checked + 1
        if got ~= want then
          bad = bad + 1
          first = first or (key .. ": want " .. want .. ", got " .. tostring(got))
        end
      end
    end
    f:close()
    ngx.header["X-Checked"] = checked
    ngx.header["X-Bad"] = bad
    ngx.header["X-First"] = first or "-"
    ngx.header["X-Polled"] = polled
    return ngx.exit(200)
  end
  return fail(404, "no such endpoint")
end

return M
