--- dynafile.copy: `dynafile copy SRC DST` -- copy a table between a local
-- database, a DynamoDB table (`dynamodb://TABLE`) and a DynamoDB JSON file
-- (one `{"Item": {...}}` per line, the format of DynamoDB's export to S3
-- and of `dynafile export --format dynamodb`), without loss: every value
-- goes through `dynafile.ddbjson` or stays a Lua value of the data model.
--
-- The source is read as a parallel scan: `--segments N` workers (child
-- processes running `dynafile copy --segment K/N`), each scanning its
-- segment and writing with the batch writer (BatchWriteItem chunks of 25
-- on DynamoDB, transactions of `--batch` items locally).  A file is read
-- or written by one process.  Progress goes to stderr when it is a
-- terminal; the last line on stdout is a JSON report: items copied, per
-- segment, seconds.
--
-- Resuming: with `--state FILE`, each segment records after every batch
-- that was written the key it has copied up to (in FILE.K, replaced
-- atomically).  A copy started again with the same state file resumes
-- each segment after its key; the items of a batch interrupted before its
-- write completed are copied again (puts are idempotent).  A finished
-- segment is marked done and skipped.
--
-- Invariant: an item is counted as copied only after the write that
-- carried it was acknowledged.
-- @module dynafile.copy

local dynafile = require "dynafile"
local ddbjson = require "dynafile.ddbjson"
local cjson = require "cjson"

local type, pairs, ipairs, tostring, tonumber, pcall, error =
  type, pairs, ipairs, tostring, tonumber, pcall, error
local string_format, table_concat = string.format, table.concat
local os_rename, os_remove, io_open = os.rename, os.remove, io.open

local M = {}

local json = cjson.new()
json.encode_sparse_array(false)

local function fail(msg)
  error({ msg = msg }, 0)
end

local function check(ok, msg, code)
  if ok == nil then fail(code and (tostring(msg) .. " (" .. code .. ")") or tostring(msg)) end
  return ok
end

-- ------------------------------------------------------------- DynamoDB JSON

local EMPTY = "\0dynafile:empty-list\0"
local function mark_empty(av)
  if av.L then
    if av.L[1] == nil then av.L = EMPTY else for _, x in ipairs(av.L) do mark_empty(x) end end
  elseif av.M then
    for _, x in pairs(av.M) do mark_empty(x) end
  end
end

--- One line of DynamoDB JSON for an item.
function M.encode_line(item)
  local t = ddbjson.encode_item(item)
  for _, av in pairs(t) do mark_empty(av) end
  local s = json.encode({ Item = t })
  if s:find('"\\u0000dynafile:empty-list\\u0000"', 1, true) then
    s = s:gsub('"\\u0000dynafile:empty%-list\\u0000"', "[]")
  end
  return s
end

--- The item of a line of DynamoDB JSON (`{"Item": {...}}` or the bare
-- attribute map).
function M.decode_line(line)
  local ok, t = pcall(json.decode, line)
  if not ok or type(t) ~= "table" then fail("not JSON: " .. tostring(t)) end
  local av = t.Item or t
  local dok, item = pcall(ddbjson.decode_item, av)
  if not dok then fail(tostring(item)) end
  return item
end

-- ------------------------------------------------------------- endpoints

--- What kind of place a copy argument names: "dynamodb", "file" or "db".
function M.kind(s)
  if s:find("^dynamodb://") then return "dynamodb" end
  if s == "-" or s:find("%.jsonl?$") or s:find("%.ddb$") then return "file" end
  return "db"
end

local function remote_opts(o, extra)
  local t = {}
  for k, v in pairs(extra or {}) do t[k] = v end
  if o.endpoint then t.endpoint = o.endpoint end
  if o.region then t.region = o.region end
  return t
end

-- The schema to give a new destination: the source's keys and indexes,
-- and the DynamoDB types of key attributes (from the source table, or
-- from the values of the first item read).
local function dest_opts(schema, sample)
  local o = { pk = schema.pk, sk = schema.sk or false }
  local gsi, lsi = {}, {}
  local any_gsi, any_lsi = false, false
  for name, d in pairs(schema.indexes or {}) do
    if d.kind == "gsi" then
      gsi[name] = { pk = d.pk, sk = d.sk, projection = d.projection }
      any_gsi = true
    else
      lsi[name] = { sk = d.sk, projection = d.projection }
      any_lsi = true
    end
  end
  if any_gsi then o.gsi = gsi end
  if any_lsi then o.lsi = lsi end
  local types = {}
  for k, v in pairs(schema.types or {}) do types[k] = v end
  if sample then
    local names = { schema.pk, schema.sk }
    for _, d in pairs(schema.indexes or {}) do
      names[#names + 1] = d.pk
      names[#names + 1] = d.sk
    end
    for _, n in pairs(names) do
      if n and not types[n] and sample[n] ~= nil then
        local t = dynafile.type(sample[n])
        if t == "N" or t == "B" or t == "S" then types[n] = t end
      end
    end
  end
  return o, types
end

local function open_source(src, o)
  local kind = M.kind(src)
  if kind == "dynamodb" then
    return check(dynafile.open(src, remote_opts(o, { create = false })))
  end
  if kind == "db" then
    local f = io_open(src .. "/data.mdb", "rb")
    if not f then fail(src .. ": no dynafile database here") end
    f:close()
    return check(dynafile.open(src, { readonly = true }))
  end
  return nil
end

local function open_dest(dst, o, schema, sample)
  local kind = M.kind(dst)
  local opts, types = dest_opts(schema, sample)
  if kind == "dynamodb" then
    local ro = remote_opts(o, opts)
    ro.types = types
    return check(dynafile.open(dst, ro))
  end
  return check(dynafile.open(dst, opts))
end

-- ------------------------------------------------------------- state

local function read_state(path)
  local f = io_open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  local ok, t = pcall(json.decode, s)
  if not ok or type(t) ~= "table" then fail(path .. ": not a copy state file") end
  if t.after then t.after = ddbjson.decode_item(t.after) end
  return t
end

local function write_state(path, st)
  local t = { copied = st.copied, done = st.done or false, line = st.line }
  if st.after then t.after = ddbjson.encode_item(st.after) end
  local tmp = path .. ".tmp"
  local f = check(io_open(tmp, "wb"))
  f:write(json.encode(t))
  f:close()
  check(os_rename(tmp, path))
end

-- ------------------------------------------------------------- one segment

local function key_of(schema, item)
  local k = { [schema.pk] = item[schema.pk] }
  if schema.sk then k[schema.sk] = item[schema.sk] end
  return k
end

-- Copy segment k of n from a database source to a database destination.
-- report(copied) is called after every acknowledged batch.
local function copy_segment(src_db, dst, o, k, n, state_path, report)
  local schema = src_db:schema()
  local st = state_path and read_state(state_path) or { copied = 0 }
  if st.done then return st.copied end
  local batch = o.batch or (M.kind(dst) == "dynamodb" and 25 or 1000)
  local dst_db
  local pending, after = {}, st.after
  local function flush()
    if #pending == 0 then return end
    check(dst_db:batch_write(function(w)
      for i = 1, #pending do w:put_item(pending[i]) end
    end))
    st.copied = st.copied + #pending
    st.after = key_of(schema, pending[#pending])
    pending = {}
    if state_path then write_state(state_path, st) end
    if report then report(st.copied) end
  end
  local opts = { start_after = after, segment = n > 1 and k or nil, segments = n > 1 and n or nil }
  local key = nil
  repeat
    local page
    opts.limit = 1000
    opts.start_after = key or after
    after = nil
    page, key = check(src_db:scan_page(opts))
    for _, item in ipairs(page) do
      if not dst_db then dst_db = open_dest(dst, o, schema, item) end
      pending[#pending + 1] = item
      if #pending >= batch then flush() end
    end
  until key == nil
  if dst_db then
    flush()
    dst_db:close()
  end
  st.done = true
  if state_path then write_state(state_path, st) end
  return st.copied
end

-- ------------------------------------------------------------- files

local function copy_to_file(src_db, dst, state_path, report)
  local st = state_path and read_state(state_path) or { copied = 0 }
  if st.done then return st.copied end
  local out
  if dst == "-" then
    out = io.stdout
  else
    out = check(io_open(dst, st.after and "ab" or "wb"))
  end
  local schema = src_db:schema()
  local key = st.after
  local opts = { limit = 1000 }
  repeat
    opts.start_after = key
    local page
    page, key = check(src_db:scan_page(opts))
    local lines = {}
    for i, item in ipairs(page) do lines[i] = M.encode_line(item) end
    if #lines > 0 then
      out:write(table_concat(lines, "\n"), "\n")
      out:flush()
      st.copied = st.copied + #lines
      st.after = key_of(schema, page[#page])
      if state_path then write_state(state_path, st) end
      if report then report(st.copied) end
    end
  until key == nil
  if out ~= io.stdout then out:close() end
  st.done = true
  if state_path then write_state(state_path, st) end
  return st.copied
end

local function copy_from_file(src, dst, o, state_path, report)
  local st = state_path and read_state(state_path) or { copied = 0, line = 0 }
  if st.done then return st.copied end
  local input = src == "-" and io.stdin or check(io_open(src, "rb"))
  local batch = o.batch or (M.kind(dst) == "dynamodb" and 25 or 1000)
  local dst_db, pending, lineno = nil, {}, 0
  local skip = st.line or 0
  local schema = { pk = o.pk or "PK", sk = o.sk, indexes = {} }
  if o.sk == nil then schema.sk = "SK" end
  if o.no_sk then schema.sk = nil end
  local function flush()
    if #pending == 0 then return end
    check(dst_db:batch_write(function(w)
      for i = 1, #pending do w:put_item(pending[i]) end
    end))
    st.copied = st.copied + #pending
    st.line = lineno
    pending = {}
    if state_path then write_state(state_path, st) end
    if report then report(st.copied) end
  end
  for line in input:lines() do
    lineno = lineno + 1
    if lineno > skip and line:find("%S") then
      local ok, item = pcall(M.decode_line, line)
      if not ok then
        flush()
        fail(string_format("%s line %d: %s; %d items were copied before it", src, lineno,
          type(item) == "table" and item.msg or tostring(item), st.copied))
      end
      if not dst_db then
        if M.kind(dst) == "db" then
          local f = io_open(dst .. "/data.mdb", "rb")
          if f then
            f:close()
            dst_db = check(dynafile.open(dst))
          end
        end
        dst_db = dst_db or open_dest(dst, o, schema, item)
      end
      pending[#pending + 1] = item
      if #pending >= batch then flush() end
    end
  end
  if input ~= io.stdin then input:close() end
  if dst_db then
    flush()
    dst_db:close()
  end
  st.done = true
  if state_path then
    local t = { copied = st.copied, done = true }
    write_state(state_path, t)
  end
  return st.copied
end

-- ------------------------------------------------------------- the command

M.HELP = [[
usage: dynafile copy SRC DST [--segments N] [--state FILE] [--batch N]
                             [--endpoint URL] [--region R]
                             [--pk NAME] [--sk NAME|--no-sk]
Copy every item from SRC to DST.  Each is a local database directory, a
DynamoDB table (dynamodb://TABLE; --endpoint and --region, else the AWS_*
environment), or a DynamoDB JSON file (*.json, *.jsonl, *.ddb or "-").  A
missing destination is created with the source's keys and indexes (--pk,
--sk, --no-sk give the keys when the source is a file).  --segments N scans
the source in N parallel processes (default 4 from DynamoDB, 1 otherwise).
--state FILE makes the copy resumable: run the same command again after
an interruption and it goes on where each segment stopped.  Progress on a
terminal; the last line is a JSON report.]]

M.OPTIONS = { segments = "value", state = "value", batch = "value", endpoint = "value",
  region = "value", pk = "value", sk = "value", ["no-sk"] = "flag", segment = "value",
  table = "flag" }

local function is_terminal()
  local ok = os.execute("test -t 2")
  return ok == true or ok == 0
end

local function now()
  local ok, socket = pcall(require, "socket")
  if ok then return socket.gettime() end
  return os.time()
end

local function positive(opts, name)
  if opts[name] == nil then return nil end
  local v = tonumber(opts[name])
  if not v or v < 1 or v ~= math.floor(v) then
    error({ usage = string_format("--%s must be a positive integer", name) }, 0)
  end
  return v
end

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- Run `dynafile copy` (called by dynafile.cli).
-- @treturn integer the exit status
function M.run(io_, opts, pos, argv0)
  local src, dst = pos[1], pos[2]
  local o = { endpoint = opts.endpoint, region = opts.region, pk = opts.pk, sk = opts.sk,
    no_sk = opts["no-sk"], batch = positive(opts, "batch") }
  local started = now()
  local sk_, dk = M.kind(src), M.kind(dst)
  if sk_ == "file" and dk == "file" then
    error({ usage = "one of SRC and DST must be a database or a table" }, 0)
  end
  local progress = is_terminal() and not opts.segment
  local function report(n)
    if progress then
      io_.stderr:write(string_format("\rcopied %d items (%.0f/s)", n,
        n / math.max(now() - started, 1e-3)))
    end
  end
  local state = opts.state
  local copied, per_segment
  if opts.segment then
    -- a worker of a parallel copy
    local k, n = opts.segment:match("^(%d+)/(%d+)$")
    k, n = tonumber(k), tonumber(n)
    if not k or k < 1 or k > n then error({ usage = "--segment takes K/N" }, 0) end
    local db = open_source(src, o)
    copy_segment(db, dst, o, k, n, state and (state .. "." .. k), function(c)
      io_.stdout:write(c, "\n")
      io_.stdout:flush()
    end)
    db:close()
    return 0
  end
  if sk_ == "file" then
    copied = copy_from_file(src, dst, o, state, report)
  elseif dk == "file" then
    local db = open_source(src, o)
    copied = copy_to_file(db, dst, state, report)
    db:close()
  else
    local n = positive(opts, "segments") or (sk_ == "dynamodb" and 4 or 1)
    -- the destination is made once, before the workers start
    local db = open_source(src, o)
    local first = check(db:scan_page({ limit = 1 }))[1]
    if first then open_dest(dst, o, db:schema(), first):close() end
    if n == 1 then
      copied = copy_segment(db, dst, o, 1, 1, state and (state .. ".1"), report)
      db:close()
      per_segment = { copied }
    else
      db:close()
      local pipes, counts = {}, {}
      for k = 1, n do
        local cmd = { argv0 or "dynafile", "copy", shell_quote(src), shell_quote(dst),
          "--segment", k .. "/" .. n }
        for _, name in ipairs { "endpoint", "region", "batch", "state" } do
          if opts[name] then cmd[#cmd + 1] = "--" .. name .. " " .. shell_quote(opts[name]) end
        end
        pipes[k] = check(io.popen(table_concat(cmd, " ") .. " 2>&1", "r"))
        counts[k] = 0
      end
      -- each worker prints its running count after every batch; reading
      -- them in turn is enough for a progress line (a worker blocked on a
      -- full pipe just waits for its turn)
      local failed = {}
      for k = 1, n do
        for line in pipes[k]:lines() do
          local c = tonumber(line)
          if c then
            counts[k] = c
            local total = 0
            for _, x in ipairs(counts) do total = total + x end
            report(total)
          else
            failed[#failed + 1] = string_format("segment %d/%d: %s", k, n, line)
          end
        end
        local ok, _, status = pipes[k]:close()
        if ok == nil or (type(status) == "number" and status ~= 0) then
          failed[#failed + 1] = string_format("segment %d/%d failed (exit %s)", k, n,
            tostring(status))
        end
      end
      if #failed > 0 then fail(table_concat(failed, "; ")) end
      copied = 0
      per_segment = {}
      for k = 1, n do
        local st = state and read_state(state .. "." .. k)
        per_segment[k] = st and st.copied or counts[k]
        copied = copied + per_segment[k]
      end
    end
  end
  if progress then io_.stderr:write("\n") end
  io_.stdout:write(json.encode({ copied = copied, source = src, destination = dst,
    segments = per_segment, seconds = math.floor((now() - started) * 1000) / 1000 }), "\n")
  if state and not opts.segment then
    -- the copy is complete: the state files have done their work
    for k = 1, #(per_segment or {}) do os_remove(state .. "." .. k) end
    os_remove(state)
  end
  return 0
end

return M
