--- dynafile.remote.credentials: where the DynamoDB backend finds its
-- credentials and region.
--
-- Credentials, first found wins: the `credentials` option of
-- `dynafile.open`; the environment (`AWS_ACCESS_KEY_ID`,
-- `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`); the shared credentials
-- file (`AWS_SHARED_CREDENTIALS_FILE`, default `~/.aws/credentials`),
-- section `profile` option, else `AWS_PROFILE`, else `default`.
-- Region: the `region` option; `AWS_REGION`; `AWS_DEFAULT_REGION`; the
-- `region` of the profile in the config file (`AWS_CONFIG_FILE`, default
-- `~/.aws/config`, section `[default]` or `[profile NAME]`).
--
-- Invariant: nothing here is cached across calls: a program that rotates
-- its keys opens a new handle and gets the new ones.
-- @module dynafile.remote.credentials

local type, ipairs = type, ipairs
local os_getenv, io_open = os.getenv, io.open
local string_format = string.format

local M = {}

--- Parse an INI file of the AWS CLI's kind.
-- @tparam string path the file
-- @treturn table|nil `{section = {key = value}}`, nil when unreadable
-- @raise never
function M.read_ini(path)
  local f = io_open(path, "r")
  if not f then return nil end
  local out, cur = {}, nil
  for line in f:lines() do
    line = line:gsub("^%s+", ""):gsub("%s+$", "")
    local sec = line:match("^%[%s*(.-)%s*%]$")
    if sec then
      cur = out[sec] or {}
      out[sec] = cur
    elseif cur and line ~= "" and not line:match("^[#;]") then
      local k, v = line:match("^([^=]-)%s*=%s*(.*)$")
      if k then cur[k:lower()] = v end
    end
  end
  f:close()
  return out
end

local function home_file(env, rel)
  local p = os_getenv(env)
  if p and p ~= "" then return p end
  local home = os_getenv("HOME")
  if not home then return nil end
  return home .. "/" .. rel
end

local function profile_name(opts)
  if type(opts.profile) == "string" then return opts.profile end
  local p = os_getenv("AWS_PROFILE")
  if p and p ~= "" then return p end
  return "default"
end

--- Find the credentials.
-- @tparam table opts the open options (`credentials`, `profile`)
-- @treturn table|nil `{access_key_id, secret_access_key, session_token}`
-- @treturn string where they came from, or what was searched
-- @raise never
function M.resolve(opts)
  local c = opts.credentials
  if c ~= nil then
    return { access_key_id = c.access_key_id, secret_access_key = c.secret_access_key,
             session_token = c.session_token }, "the credentials option"
  end
  local id, secret = os_getenv("AWS_ACCESS_KEY_ID"), os_getenv("AWS_SECRET_ACCESS_KEY")
  if id and id ~= "" and secret and secret ~= "" then
    local tok = os_getenv("AWS_SESSION_TOKEN")
    return { access_key_id = id, secret_access_key = secret,
             session_token = (tok ~= "" and tok) or nil }, "the environment"
  end
  local profile = profile_name(opts)
  local path = home_file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials")
  local ini = path and M.read_ini(path)
  local sec = ini and ini[profile]
  if sec and sec.aws_access_key_id and sec.aws_secret_access_key then
    return { access_key_id = sec.aws_access_key_id,
             secret_access_key = sec.aws_secret_access_key,
             session_token = sec.aws_session_token }, path
  end
  return nil, string_format("no credentials: none in the options, AWS_ACCESS_KEY_ID and "
    .. "AWS_SECRET_ACCESS_KEY are not set, and %s has no profile '%s' with keys",
    path or "~/.aws/credentials", profile)
end

--- Find the region.
-- @tparam table opts the open options (`region`, `profile`)
-- @treturn string|nil the region
-- @raise never
function M.region(opts)
  if type(opts.region) == "string" then return opts.region end
  for _, env in ipairs { "AWS_REGION", "AWS_DEFAULT_REGION" } do
    local r = os_getenv(env)
    if r and r ~= "" then return r end
  end
  local profile = profile_name(opts)
  local path = home_file("AWS_CONFIG_FILE", ".aws/config")
  local ini = path and M.read_ini(path)
  if ini then
    local sec = ini[profile == "default" and "default" or ("profile " .. profile)]
    if sec and sec.region then return sec.region end
  end
  return nil
end

return M
