--- tests/remote/nginx_api.lua -- the request handlers of tests/remote_nginx.sh:
-- a DynamoDB-backed key-value API inside nginx workers, through the
-- DynamoDB backend's cosocket transport.
--   GET /put?k=K&v=V    put {PK = K, SK = "v", v = V}
--   GET /get?k=K        the value (404 when missing)
--   GET /add?k=K        add 1 to counter K (update_item with add)
-- Every answer carries x-worker (the pid) and x-cosockets (whether the
-- request went through nginx cosockets).
-- luacheck: globals ngx
local dynafile = require "dynafile"
local http = require "dynafile.remote.http"

local M = {}
local db

function M.init_worker(endpoint)
  db = assert(dynafile.open("dynamodb://nginx_remote", {
    endpoint = endpoint, region = "us-east-1", timeout = 20,
  }))
end

function M.handle()
  local args = ngx.req.get_uri_args()
  ngx.header["x-worker"] = ngx.worker.pid()
  ngx.header["x-cosockets"] = tostring(http.cosockets())
  local path, k = ngx.var.uri, args.k
  if not k then return ngx.exit(400) end
  local ok, msg, code
  if path == "/put" then
    ok, msg, code = db:put_item({ PK = k, SK = "v", v = args.v })
  elseif path == "/get" then
    local item
    item, msg, code = db:get_item({ PK = k, SK = "v" })
    if item then
      ngx.print(item.v)
      return
    end
    if not msg then return ngx.exit(404) end
  elseif path == "/add" then
    ok, msg, code = db:update_item({ PK = k, SK = "c" }, { add = { n = 1 } })
  else
    return ngx.exit(404)
  end
  if not ok then
    ngx.status = 500
    ngx.print(tostring(code), ": ", tostring(msg))
    return
  end
  ngx.print("ok")
end

return M
