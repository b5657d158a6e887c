--- dynafile.cli: the `dynafile` command -- inspect and move data without
-- writing a program.
--
-- Every subcommand prints JSON Lines on stdout (one item or report per
-- line; `--table` prints an aligned table instead), writes errors to
-- stderr and exits non-zero on failure: 1 for a failed operation, 2 for a
-- usage error.  `M.main(args, io)` returns the exit status, so the tests can
-- run it in-process as well as through bin/dynafile.
-- @module dynafile.cli

local dynafile = require "dynafile"
local json = require "dynafile.json"

local type, pairs, ipairs, tostring, tonumber = type, pairs, ipairs, tostring, tonumber
local error, pcall, select = error, pcall, select
local string_format, string_rep, string_match = string.format, string.rep, string.match
local table_concat, table_sort = table.concat, table.sort
local os_clock = os.clock

local M = {}

local USAGE = [[
usage: dynafile <command> [options] ...

commands:
  create DIR [--pk N] [--sk N]  make a new, empty database (keys PK and SK unless given)
  info DIR                      schema, counts, size on disk, indexes, map, readers
  get DIR PK [SK]               print one item
  query DIR PK [options]        items of one partition, in sort-key order
  scan DIR [options]            every item
  put DIR JSON                  write one item given as JSON
  delete DIR PK [SK]            delete one item
  export DIR [--format F]       every item as JSON Lines (F: jsonl, dynamodb)
  import DIR FILE [--format F]  load items from a file ("-": stdin)
  purge-expired DIR             delete expired items (TTL attribute)
  check DIR                     verify every index against the items
  upgrade DIR                   bring a database of an older release to
                                this release's on-disk format
  copy SRC DST                  copy a table between a database, a DynamoDB
                                table (dynamodb://T) and a DynamoDB JSON file
  serve DIR [options]           serve the DynamoDB API on the tables in DIR

Key arguments (PK, SK) that read as a JSON number are numbers; write them as
a JSON string ('"42"') to mean the string.  Every command takes --help and
--table (aligned table output instead of JSON Lines).
]]

local HELP = {
  create = [[
usage: dynafile create DIR [--pk NAME] [--sk NAME | --no-sk] [--ttl NAME]
Make a new, empty database in DIR (created with its parents) whose items
are keyed by the attributes NAME: the partition key --pk (default PK) and
the sort key --sk (default SK; --no-sk: a partition key alone), with
--ttl naming an attribute of expiry times in epoch seconds.  Print its
schema.  Exit 1 when DIR already holds a database.]],
  info = [[
usage: dynafile info DIR [--table]
Print the schema (key attributes, TTL attribute, indexes), the number of
items and partitions, the size on disk, the map size and the reader slots.]],
  get = [[
usage: dynafile get DIR PK [SK] [--table]
Print the item with this key as one JSON line; exit 1 when it is missing.]],
  query = [[
usage: dynafile query DIR PK [--begins-with V] [--eq V] [--lt V] [--le V]
                              [--gt V] [--ge V] [--between LO,HI]
                              [--index NAME] [--filter EXPR] [--limit N]
                              [--reverse] [--table]
Print the items of partition PK (of the table, or of --index) in sort-key
order (--reverse: descending).  --filter takes a filter expression such as
'score > 10 and exists(name)'.]],
  scan = [[
usage: dynafile scan DIR [--filter EXPR] [--segment K/N] [--index NAME]
                         [--limit N] [--table]
Print every item; --segment K/N prints only segment K of N (1-based), so N
processes can share a scan.]],
  put = [[
usage: dynafile put DIR JSON
Write one item given as a JSON object (it must hold the key attributes).
Numbers written without a fraction or exponent are stored as integers.]],
  delete = [[
usage: dynafile delete DIR PK [SK]
Delete one item.  Deleting a missing item is not an error.]],
  export = [[
usage: dynafile export DIR [--format jsonl|dynamodb] [--output FILE]
Write every item, one per line, in scan order: JSON Lines (default) or
DynamoDB JSON ({"Item": {"PK": {"S": "..."}, ...}}, the format of
DynamoDB's export to S3).  Keys are sorted, so exports are repeatable.]],
  import = [[
usage: dynafile import DIR FILE [--format jsonl|dynamodb] [--batch N]
                                [--pk NAME] [--sk NAME|--no-sk]
Load items from FILE ("-" for stdin), N per transaction (default 1000).
Each batch is written atomically; on bad input the import stops and says
which line failed and how many items were written before it.  --pk/--sk
name the key attributes when DIR is a new database (default PK and SK).
The batches before the last commit without a flush of their own (sync
"normal"); the last one flushes them all (sync "full"), so everything
reported imported is on disk.]],
  ["purge-expired"] = [[
usage: dynafile purge-expired DIR
Delete every item whose TTL attribute is in the past; print the count.]],
  copy = require("dynafile.copy").HELP,
  serve = require("dynafile.serve.cli").USAGE,
  check = [[
usage: dynafile check DIR [--table]
Verify every index and the TTL entries against the items; exit 1 when
anything disagrees.]],
  upgrade = [[
usage: dynafile upgrade DIR [--table]
Open DIR for writing once, which brings a database written by an older
release to this release's on-disk format, in place and in one transaction
(the commands that only read open databases read-only and refuse an older
format until then).  Prints the format the database is in.]],
}

-- Options of each command: name -> "flag" or "value".
local OPTIONS = {
  create = { pk = "value", sk = "value", ["no-sk"] = "flag", ttl = "value",
    table = "flag" },
  info = { table = "flag" },
  get = { table = "flag" },
  query = { ["begins-with"] = "value", eq = "value", lt = "value", le = "value",
    gt = "value", ge = "value", between = "value", index = "value",
    filter = "value", limit = "value", reverse = "flag", table = "flag" },
  scan = { filter = "value", segment = "value", index = "value", limit = "value",
    table = "flag" },
  put = { table = "flag" },
  delete = { table = "flag" },
  export = { format = "value", output = "value", table = "flag" },
  import = { format = "value", batch = "value", pk = "value", sk = "value",
    ["no-sk"] = "flag", table = "flag" },
  ["purge-expired"] = { table = "flag" },
  check = { table = "flag" },
  upgrade = { table = "flag" },
  copy = require("dynafile.copy").OPTIONS,
  serve = { port = "value", host = "value", workers = "value", auth = "value",
    sync = "value", region = "value" },
}

local ARGS = {
  create = { 1, 1 }, info = { 1, 1 }, get = { 2, 3 }, query = { 2, 2 }, scan = { 1, 1 },
  put = { 2, 2 }, delete = { 2, 3 }, export = { 1, 1 }, import = { 2, 2 },
  ["purge-expired"] = { 1, 1 }, check = { 1, 1 }, copy = { 2, 2 }, serve = { 1, 1 },
  upgrade = { 1, 1 },
}

-- A usage error: printed with the command's help, exit 2.
local Usage = {}

local function usage(fmt, ...)
  error(setmetatable({ msg = string_format(fmt, ...) }, Usage), 0)
end

local function parse(cmd, args)
  local spec, opts, pos = OPTIONS[cmd], {}, {}
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--help" or a == "-h" then
      opts.help = true
    elseif a:sub(1, 2) == "--" and #a > 2 then
      local name, val = string_match(a, "^%-%-([^=]+)=(.*)$")
      name = name or a:sub(3)
      local kind = spec[name]
      if not kind then usage("unknown option --%s", name) end
      if kind == "value" then
        if val == nil then
          i = i + 1
          val = args[i]
          if val == nil then usage("--%s needs a value", name) end
        end
        opts[name] = val
      else
        if val ~= nil then usage("--%s takes no value", name) end
        opts[name] = true
      end
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  if not opts.help then
    local lo, hi = ARGS[cmd][1], ARGS[cmd][2]
    if #pos < lo then usage("missing arguments") end
    if #pos > hi then usage("too many arguments") end
  end
  return opts, pos
end

-- A key argument: a JSON number is a number, a JSON string literal is that
-- string, anything else is the text itself.
local function key_arg(s)
  if string_match(s, "^%-?%d+%.?%d*[eE]?[-+]?%d*$") or string_match(s, '^".*"$') then
    local ok, v = pcall(json.decode, s)
    if ok and (type(v) == "number" or type(v) == "string") then return v end
  end
  return s
end

local function fail(msg)
  error({ msg = msg }, 0)
end

local function check(ok, msg, code)
  if ok == nil then fail(code and (msg .. " (" .. code .. ")") or msg) end
  return ok
end

local function dir_exists(dir)
  local f = io.open(dir .. "/data.mdb", "rb")
  if f then f:close() return true end
  return false
end

local function open_db(dir, write, extra)
  if not dir_exists(dir) and not (extra and extra.create) then
    fail(dir .. ": no dynafile database here (make one with: dynafile create "
      .. dir .. " [--pk NAME] [--sk NAME])")
  end
  local opts = { readonly = not write }
  if extra then
    for k, v in pairs(extra) do if k ~= "create" then opts[k] = v end end
  end
  return check(dynafile.open(dir, opts))
end

---------------------------------------------------------------- output

local function printer(out, opts)
  if not opts.table then
    return {
      row = function(item) out:write(json.encode(item), "\n") end,
      done = function() end,
    }
  end
  -- --table: collect rows, then print aligned columns
  local rows, cols, seen = {}, {}, {}
  return {
    first = function(names)
      for _, n in ipairs(names) do
        if n and not seen[n] then seen[n] = true cols[#cols + 1] = n end
      end
    end,
    row = function(item)
      rows[#rows + 1] = item
      local extra = {}
      for k in pairs(item) do
        if not seen[k] then extra[#extra + 1] = k end
      end
      table_sort(extra)
      for _, k in ipairs(extra) do seen[k] = true cols[#cols + 1] = k end
    end,
    done = function()
      if #cols == 0 then return end
      local width, cells = {}, {}
      for c, name in ipairs(cols) do width[c] = #name end
      for r, item in ipairs(rows) do
        cells[r] = {}
        for c, name in ipairs(cols) do
          local v = item[name]
          local s = v == nil and "" or (type(v) == "string" and v or json.encode(v))
          s = s:gsub("[%c]", " ")
          cells[r][c] = s
          if #s > width[c] then width[c] = #s end
        end
      end
      local function line(values)
        local parts = {}
        for c = 1, #cols do
          parts[c] = values[c] .. string_rep(" ", width[c] - #values[c])
        end
        out:write((table_concat(parts, "  "):gsub("%s+$", "")), "\n")
      end
      line(cols)
      local rule = {}
      for c = 1, #cols do rule[c] = string_rep("-", width[c]) end
      line(rule)
      for r = 1, #rows do line(cells[r]) end
    end,
  }
end

local function key_names(db, index)
  local s = db:schema()
  local names = { s.pk, s.sk }
  if index and s.indexes[index] then
    names[#names + 1] = s.indexes[index].pk
    names[#names + 1] = s.indexes[index].sk
  end
  return names
end

local function print_items(io_, opts, db, iter, index)
  local p = printer(io_.stdout, opts)
  if p.first then p.first(key_names(db, index)) end
  local n = 0
  for item in iter do
    p.row(item)
    n = n + 1
  end
  p.done()
  return n
end

local function print_record(io_, opts, rec)
  if opts.table then
    local keys = {}
    for k in pairs(rec) do keys[#keys + 1] = k end
    table_sort(keys)
    local w = 0
    for _, k in ipairs(keys) do if #k > w then w = #k end end
    for _, k in ipairs(keys) do
      local v = rec[k]
      io_.stdout:write(k, string_rep(" ", w - #k), "  ",
        type(v) == "string" and v or json.encode(v), "\n")
    end
  else
    io_.stdout:write(json.encode(rec), "\n")
  end
end

---------------------------------------------------------------- commands

local C = {}

function C.create(io_, opts, pos)
  local dir = pos[1]
  if dir_exists(dir) then fail(dir .. ": a database exists here already") end
  if opts.sk and opts["no-sk"] then usage("--sk and --no-sk go apart") end
  local extra = { create = true, pk = opts.pk or "PK", ttl = opts.ttl }
  if opts["no-sk"] then extra.sk = false else extra.sk = opts.sk or "SK" end
  for _, k in ipairs { "pk", "sk", "ttl" } do
    if extra[k] == "" then usage("--%s needs an attribute name", k) end
  end
  local db = open_db(dir, true, extra)
  local s = db:schema()
  db:close()
  print_record(io_, opts, { dir = dir, pk = s.pk, sk = s.sk, ttl = s.ttl })
  return 0
end

function C.info(io_, opts, pos)
  local dir = pos[1]
  local db = open_db(dir, false)
  local s = db:schema()
  local st = check(db:stat())
  local partitions, last, n = 0, {}, 0
  -- items of one partition are adjacent in scan order
  for item in db:scan() do
    n = n + 1
    local pk = item[s.pk]
    if last.set == nil or last.v ~= pk then
      partitions = partitions + 1
      last.set, last.v = true, pk
    end
  end
  local size = 0
  local f = io.open(dir .. "/data.mdb", "rb")
  if f then size = f:seek("end") f:close() end
  local indexes = {}
  for name, d in pairs(s.indexes) do
    indexes[name] = { kind = d.kind, pk = d.pk, sk = d.sk, projection = d.projection }
  end
  db:close()
  print_record(io_, opts, {
    path = dir, pk = s.pk, sk = s.sk or dynafile.null, ttl = s.ttl or dynafile.null,
    items = n, partitions = partitions, size_on_disk = size,
    map_size = st.map_size, used_bytes = st.used_bytes,
    max_readers = st.max_readers, readers_used = st.readers_used,
    index_entries = st.index_entries, indexes = indexes,
  })
  return 0
end

local function key_from(db, pos, first)
  local s = db:schema()
  local key = { [s.pk] = key_arg(pos[first]) }
  if s.sk then
    if pos[first + 1] == nil then usage("this table needs a sort key: give PK and SK") end
    key[s.sk] = key_arg(pos[first + 1])
  elseif pos[first + 1] ~= nil then
    usage("this table has no sort key: give only PK")
  end
  return key
end

function C.get(io_, opts, pos)
  local db = open_db(pos[1], false)
  local item = db:get_item(key_from(db, pos, 2))
  if not item then
    db:close()
    fail("no item with that key")
  end
  print_items(io_, opts, db, function() local x = item item = nil return x end)
  db:close()
  return 0
end

local function limit_of(opts)
  if opts.limit == nil then return nil end
  local n = tonumber(opts.limit)
  if not n or n < 1 or n ~= math.floor(n) then usage("--limit must be a positive integer") end
  return n
end

function C.query(io_, opts, pos)
  local db = open_db(pos[1], false)
  local q = { index = opts.index, filter = opts.filter, limit = limit_of(opts) }
  if opts.reverse then q.scan_index_forward = false end
  local conds = {
    ["begins-with"] = "begins_with", eq = "eq", lt = "lt", le = "le", gt = "gt", ge = "ge",
  }
  for opt, name in pairs(conds) do
    if opts[opt] then q[name] = key_arg(opts[opt]) end
  end
  if opts.between then
    local lo, hi = string_match(opts.between, "^(.-),(.*)$")
    if not lo then usage("--between takes LO,HI") end
    q.between = { key_arg(lo), key_arg(hi) }
  end
  local ok, iter = pcall(db.query, db, key_arg(pos[2]), q)
  if not ok then fail((tostring(iter):gsub("^.-dynafile%.", "dynafile."))) end
  print_items(io_, opts, db, iter, opts.index)
  db:close()
  return 0
end

function C.scan(io_, opts, pos)
  local db = open_db(pos[1], false)
  local q = { index = opts.index, filter = opts.filter, limit = limit_of(opts) }
  if opts.segment then
    local k, n = string_match(opts.segment, "^(%d+)/(%d+)$")
    if not k then usage("--segment takes K/N, e.g. 2/4") end
    q.segment, q.segments = tonumber(k), tonumber(n)
  end
  local ok, iter = pcall(db.scan, db, q)
  if not ok then fail((tostring(iter):gsub("^.-dynafile%.", "dynafile."))) end
  print_items(io_, opts, db, iter, opts.index)
  db:close()
  return 0
end

local function decode_item(line)
  local ok, item = pcall(json.decode, line)
  if not ok then fail(item) end
  if type(item) ~= "table" then fail("the item must be a JSON object") end
  return item
end

function C.put(io_, opts, pos)
  local item = decode_item(pos[2])
  local db = open_db(pos[1], true)
  local ok, a, b, c = pcall(db.put_item, db, item)
  db:close()
  if not ok then fail((tostring(a):gsub("^.-dynafile%.", "dynafile."))) end
  check(a, b, c)
  if opts.table then io_.stdout:write("ok\n") else io_.stdout:write('{"ok":true}\n') end
  return 0
end

C.delete = function(io_, opts, pos)
  local db = open_db(pos[1], true)
  local ok, a, b, c = pcall(db.delete_item, db, key_from(db, pos, 2))
  db:close()
  if not ok then fail((tostring(a):gsub("^.-dynafile%.", "dynafile."))) end
  check(a, b, c)
  if opts.table then io_.stdout:write("ok\n") else io_.stdout:write('{"ok":true}\n') end
  return 0
end

local function format_of(opts)
  local f = opts.format or "jsonl"
  if f ~= "jsonl" and f ~= "dynamodb" then usage("--format must be jsonl or dynamodb") end
  return f
end

function C.export(io_, opts, pos)
  local fmt = format_of(opts)
  local db = open_db(pos[1], false)
  local out = io_.stdout
  if opts.output then out = check(io.open(opts.output, "wb")) end
  local enc = fmt == "dynamodb" and json.encode_ddb or json.encode
  local n = 0
  for item in db:scan() do
    out:write(enc(item), "\n")
    n = n + 1
  end
  if opts.output then out:close() end
  db:close()
  io_.stderr:write(string_format("exported %d items\n", n))
  return 0
end

local function is_terminal()
  local ok = os.execute("test -t 2")
  return ok == true or ok == 0
end

function C.import(io_, opts, pos)
  local fmt = format_of(opts)
  local batch = tonumber(opts.batch or 1000)
  if not batch or batch < 1 or batch ~= math.floor(batch) then
    usage("--batch must be a positive integer")
  end
  local input = pos[2] == "-" and io_.stdin or io.open(pos[2], "rb")
  if not input then fail(pos[2] .. ": cannot open") end
  local create = { create = true }
  if opts.pk then create.pk = opts.pk end
  if opts["no-sk"] then create.sk = false elseif opts.sk then create.sk = opts.sk end
  local db = open_db(pos[1], true, create)
  -- the fastest safe path: every batch is one call into the core, which
  -- writes its items in key order; the batches but the last commit with
  -- sync "normal" (no flush each), the last through a "full" handle, whose
  -- flush covers every commit before it
  local fast = check(dynafile.open(pos[1], { sync = "normal" }))
  local decode = fmt == "dynamodb" and json.decode_ddb or json.decode
  local progress = is_terminal()
  local written, lineno, pending = 0, 0, {}
  local started = os_clock()

  local function flush(last)
    if #pending == 0 then return end
    local h = last and db or fast
    local ok, a, b, c = pcall(h.batch_write, h, function(w)
      for _, it in ipairs(pending) do w:put_item(it.item) end
    end)
    if not ok or not a then
      -- find the offending line for the report
      local msg = ok and tostring(b) .. (c and (" (" .. c .. ")") or "") or tostring(a)
      msg = msg:gsub("^.-dynafile%.", "dynafile.")
      fail(string_format(
        "batch of lines %d-%d was not written: %s; %d items were imported before it",
        pending[1].line, pending[#pending].line, msg, written))
    end
    written = written + #pending
    pending = {}
    if progress then
      io_.stderr:write(string_format("\rimported %d items (%.1fs)", written, os_clock() - started))
    end
  end

  local ok, err = pcall(function()
    for line in input:lines() do
      lineno = lineno + 1
      if line:match("%S") then
        local dok, item = pcall(decode, line)
        if not dok or type(item) ~= "table" then
          flush(true)
          fail(string_format("line %d: %s; %d items were imported before it "
            .. "(the import stopped there)",
            lineno, dok and "not a JSON object" or tostring(item), written))
        end
        local vok, verr = db._c:encode(item)
        if vok then vok, verr = db._c:check_key(item) end
        if not vok then
          flush(true)
          fail(string_format("line %d: dynafile.import: %s; %d items were imported "
            .. "before it (the import stopped there)", lineno, verr, written))
        end
        -- a full batch waits for the next item: the last batch is the one
        -- left at the end of the input
        if #pending >= batch then flush(false) end
        pending[#pending + 1] = { item = item, line = lineno }
      end
    end
    flush(true)
  end)
  if input ~= io_.stdin then input:close() end
  fast:close()
  db:close()
  if progress then io_.stderr:write("\n") end
  if not ok then error(err, 0) end
  io_.stderr:write(string_format("imported %d items\n", written))
  return 0
end

C["purge-expired"] = function(io_, opts, pos)
  local db = open_db(pos[1], true)
  local n = check(db:purge_expired())
  db:close()
  print_record(io_, opts, { purged = n })
  return 0
end

-- The command that runs this program, for the workers of a parallel
-- copy (set by main from arg[-1] and arg[0]).
local self_command

function C.copy(io_, opts, pos)
  local ok, status = pcall(require("dynafile.copy").run, io_, opts, pos, self_command)
  if ok then return status end
  if type(status) == "table" and status.usage then usage("%s", status.usage) end
  error(status, 0)
end

function C.check(io_, opts, pos)
  local db = open_db(pos[1], false)
  local r = check(db:check())
  db:close()
  print_record(io_, opts, r)
  return r.ok and 0 or 1
end

function C.upgrade(io_, opts, pos)
  local db = open_db(pos[1], true)
  local format = db:stat().format
  db:close()
  print_record(io_, opts, { format = format })
  return 0
end

---------------------------------------------------------------- entry

--- Run the command line `args` (a list of strings).
-- @tparam table args
-- @tparam[opt] table io_ {stdout=, stderr=, stdin=} (default: io's)
-- @treturn integer exit status
-- `dynafile serve` lives in its own module.
function C.serve(io_, opts, pos)
  return require("dynafile.serve.cli").run(io_, opts, pos[1])
end

function M.main(args, io_)
  io_ = io_ or { stdout = io.stdout, stderr = io.stderr, stdin = io.stdin }
  local cmd = args[1]
  if cmd == nil or cmd == "--help" or cmd == "-h" or cmd == "help" then
    io_.stdout:write(USAGE)
    return cmd == nil and 2 or 0
  end
  if not C[cmd] then
    io_.stderr:write("dynafile: unknown command '", tostring(cmd), "'\n", USAGE)
    return 2
  end
  local rest = { select(2, (table.unpack or unpack)(args)) } -- luacheck: ignore 143
  if args[0] and args[-1] then
    self_command = string_format("'%s' '%s'", (tostring(args[-1]):gsub("'", "'\\''")),
      (tostring(args[0]):gsub("'", "'\\''")))
  end
  local ok, status = pcall(function()
    local opts, pos = parse(cmd, rest)
    if opts.help then
      io_.stdout:write(HELP[cmd], "\n")
      return 0
    end
    return C[cmd](io_, opts, pos)
  end)
  if ok then return status end
  if type(status) == "table" and getmetatable(status) == Usage then
    io_.stderr:write("dynafile ", cmd, ": ", status.msg, "\n", HELP[cmd], "\n")
    return 2
  end
  local msg = type(status) == "table" and status.msg or tostring(status)
  io_.stderr:write("dynafile ", cmd, ": ", msg, "\n")
  return 1
end

return M
