--- dynafile.reader: queries, scans and their pages.
--
-- A reader pulls items from the binding a page at a time, each page read
-- in one short read transaction, and applies what C cannot: TTL
-- functions, Lua filters (on views of the stored items: filter_page) and
-- the limit counted after them.  Iterators and the page calls share it.
--
-- Invariant: `next_key` is the resume point after every entry the reader
-- has examined.  When reading stops on the limit inside a page, the
-- resume point is the key of the last item returned instead, so the rest
-- of that page is read again by the next call -- never skipped.
-- @module dynafile.reader
-- @local

local core = require "dynafile.core"
local errors = require "dynafile.errors"
local expr = require "dynafile.expr"
local handle = require "dynafile.handle"

local error, type, pairs, tostring, setmetatable, pcall =
  error, type, pairs, tostring, setmetatable, pcall
local string_format = string.format
local math_floor, math_huge = math.floor, math.huge

local fail, failed = errors.fail, errors.failed
local now, key_of = handle.now, handle.key_of

local M = {}

local QUERY_OPTS = {
  starts_with = true, begins_with = true, eq = true, lt = true, le = true,
  gt = true, ge = true, between = true, scan_index_forward = true,
  index = true, filter = true, limit = true, start_after = true, stats = true,
  key_condition = true, projection = true,
}
local SCAN_OPTS = {
  filter = true, limit = true, start_after = true, index = true,
  segment = true, segments = true, stats = true, projection = true,
}
local NO_OPTS = setmetatable({}, { __newindex = function() error("read-only", 2) end })

-- The key conditions, ranked for messages that name two of them.
local CONDS = { begins_with = 1, eq = 2, lt = 3, le = 4, gt = 5, ge = 6, between = 7 }

local function positive_int(fn, name, v)
  if type(v) ~= "number" or v < 1 or v ~= math_floor(v) or v == math_huge then
    fail(fn, "%s must be a positive integer", name)
  end
end
M.positive_int = positive_int

-- Build the binding's page spec from user options: one table, sized once,
-- that later also holds the reader's state (see reader_new).  The key
-- values in it are judged by the binding.  Returns spec, lua_filter,
-- limit, or raises; a filter, key condition or projection that does not
-- compile returns nil, msg.
local function build_spec(self, fn, pk, opts, scanning)
  local allowed = scanning and SCAN_OPTS or QUERY_OPTS
  if opts == nil then
    opts = NO_OPTS
  elseif type(opts) ~= "table" then
    fail(fn, "options must be a table, got %s", type(opts))
  end
  -- Only the fields every query or scan sets are in the constructor: it
  -- sizes the table for them (16 slots), and a short query pays for the
  -- table it makes (a constructor naming every optional field, nil or
  -- not, made a table four times that size: a fifth of the set-up).
  -- The others (hi, start, index, start_after, segment, segments,
  -- filter, now, stats, lua_filter, limit, ttl_fn, next_key, last,
  -- projection, late_projection, view_page) are added when used.
  local spec = {
    query = not scanning, pk = pk, cond = nil, lo = nil, reverse = false,
    -- the reader's fields (reader_new, reader_fill)
    fn = fn, h = self._c, db = self, max = 0, items = false, pos = 0, n = 0,
    done = false, returned = 0, filled = false,
  }
  local cond
  for k, v in pairs(opts) do
    if not allowed[k] then fail(fn, "unknown option '%s'", tostring(k)) end
    if CONDS[k] then
      if cond then
        local a, b = cond, k
        if CONDS[a] > CONDS[b] then a, b = b, a end
        fail(fn, "only one key condition allowed (%s and %s)", a, b)
      end
      cond = k
      if k == "between" then
        if type(v) ~= "table" or v[1] == nil or v[2] == nil then
          fail(fn, "between must be a list {lo, hi}")
        end
        spec.lo, spec.hi = v[1], v[2]
      else
        spec.lo = v
      end
    end
  end
  if not scanning then
    local kx = opts.key_condition
    if type(pk) == "table" and expr.is(pk) then
      if kx ~= nil then fail(fn, "a key condition given twice (as pk and as key_condition)") end
      kx, pk = pk, nil
    end
    if kx ~= nil then
      if not expr.is(kx) then fail(fn, "key_condition must be a dynafile.expr") end
      if cond then fail(fn, "only one key condition allowed (%s and key_condition)", cond) end
      if pk ~= nil then fail(fn, "the partition key comes from key_condition; pass nil") end
      local kpk, ksk = self._pk, self._sk
      local index = opts.index
      local d = type(index) == "string" and self._schema.indexes[index]
      if d then
        kpk = d.pk or self._pk
        ksk = d.sk
      end
      local kc, msg = expr.key_condition(kx, kpk, ksk)
      if not kc then return nil, string_format("dynafile.%s: %s", fn, msg) end
      pk, cond = kc.pk, kc.cond
      spec.lo, spec.hi = kc.lo, kc.hi
    end
    spec.pk, spec.cond, spec.start = pk, cond, opts.starts_with
    local f = opts.scan_index_forward
    if f ~= nil and type(f) ~= "boolean" then fail(fn, "scan_index_forward must be a boolean") end
    spec.reverse = (f == false)
  else
    local k, n = opts.segment, opts.segments
    if (k == nil) ~= (n == nil) then fail(fn, "segment and segments go together") end
    if n ~= nil then
      positive_int(fn, "segments", n)
      positive_int(fn, "segment", k)
      if k > n then fail(fn, "segment must be in 1..segments") end
      if n > 4096 then fail(fn, "segments must be at most 4096") end
      spec.segment, spec.segments = k, n
    end
  end
  local index = opts.index
  if index ~= nil then
    if type(index) ~= "string" then fail(fn, "index must be an index name") end
    spec.index = index
  end
  local limit = opts.limit
  if limit ~= nil then positive_int(fn, "limit", limit) end
  local after = opts.start_after
  if after ~= nil then
    if type(after) ~= "table" then fail(fn, "start_after must be a key table") end
    spec.start_after = after
  end
  local stats = opts.stats
  if stats ~= nil then
    if type(stats) ~= "table" then fail(fn, "stats must be a table") end
    spec.stats = stats
  end
  local lua_filter
  local f = opts.filter
  if f == nil then -- luacheck: ignore 542 (the usual case, first)
  elseif type(f) == "function" then
    lua_filter = f
  elseif type(f) == "string" then
    local e, msg = core.compile(f)
    if not e then return nil, string_format("dynafile.%s: %s", fn, msg) end
    spec.filter = e
  elseif core.kind(f) == "expr" then
    spec.filter = f
  elseif expr.is(f) then
    local e, msg = expr.compiled(f, "filter")
    if not e then return nil, string_format("dynafile.%s: %s", fn, msg) end
    spec.filter = e
  elseif f ~= nil then
    fail(fn, "filter must be a function, an expression string or a dynafile.expr, got %s",
      type(f))
  end
  local pj = opts.projection
  if pj ~= nil then
    local pr, msg = handle.projection(fn, pj)
    if not pr then return nil, msg end
    spec.projection = pr
  end
  return spec, lua_filter, limit
end

local PAGE = 100
M.PAGE = PAGE
-- Pages after the first: Lua turns a page's items into tables at once, and
-- turning smaller batches over is faster (the tables of a page of 50 stay
-- in the caches while the loop uses them; measured with make bench: a scan
-- is about 15% faster than with pages of 100).  The first page stays at
-- PAGE, so a partition of up to PAGE items is still one read transaction.
local LATER_PAGE = 50

-- A TTL function judges the whole item: an index that projects only some
-- attributes gives it the stored item, read by the entry's key (an item
-- gone since is expired too).
local function projected_ttl(self, f)
  local h = self._c
  return function(it, t)
    local full = h:get_item(key_of(self, it), t)
    return full == nil or f(full, t)
  end
end

-- Make the spec a reader.  (The binding reads the spec's fields and
-- ignores the reader's.)
local function reader_new(self, r, lua_filter, limit)
  local stats = r.stats
  if r.projection and (lua_filter or self._ttl_fn) then
    -- Lua code judges whole items: project after it, in reader_read
    r.late_projection, r.projection = r.projection, nil
  end
  if stats then stats.examined, stats.decoded, stats.pages = 0, 0, 0 end
  local ttl_fn = self._ttl_fn
  if ttl_fn and r.index then
    local def = self._schema.indexes[r.index]
    if def and def.projection ~= "all" then ttl_fn = projected_ttl(self, ttl_fn) end
  end
  -- (spec.h and spec.db are set by build_spec; a nil field is not set)
  if self._timed then r.now = now(self) end
  if ttl_fn then r.ttl_fn = ttl_fn end
  if lua_filter then r.lua_filter = lua_filter end
  if limit then r.limit = limit end
  if r.start_after ~= nil then r.next_key = r.start_after end
  return r
end

-- Judge the n items of a page read for a Lua filter (in r.view_page)
-- through views: the items the TTL function keeps (given the decoded
-- item, first) and the filter accepts, decoded, into out; returns their
-- count.  A view's call is closed before any other code runs -- after the
-- filter returns or raises -- so a view kept by the filter refuses to be
-- used: without a TTL function only the binding's view and item calls
-- run between two filter calls (view opens the next call, item closes
-- it), with one the call is closed before the TTL function runs.
local function judge_page(vp, filter, ttl_fn, t, n, out)
  local view, item, close = vp.view, vp.item, vp.close
  local m = 0
  for i = 1, n do
    local it = nil
    if ttl_fn then
      it = item(vp, i)
      if ttl_fn(it, t) then it = false end -- expired: not given to the filter
    end
    if it ~= false then
      local yes = filter(view(vp, i))
      if ttl_fn then close(vp) end
      if yes then
        m = m + 1
        out[m] = it or item(vp, i) -- item closes the call
      end
    end
  end
  return m
end

-- The filter and the TTL function run under one pcall per page (which
-- lets them yield -- coroutines, OpenResty -- on Lua 5.2+ and LuaJIT):
-- when either raises, the open call is closed and the error raised again.
-- One pcall per page, not per item: a pcall costs about as much as the
-- filter call itself.
local function filter_page(r, n)
  local vp, out = r.view_page, {}
  local ok, m = pcall(judge_page, vp, r.lua_filter, r.ttl_fn, r.now, n, out)
  vp:close()
  if not ok then error(m, 0) end
  return out, m
end

-- Read the next page into r.items: true when a page was read (it may be
-- empty), false at the end, nil, message, code when it cannot be read.
local function reader_fill(r)
  if r.done then return false end
  local limit = r.limit
  r.start_after = r.next_key
  local want = r.filled and LATER_PAGE or PAGE
  r.filled = true
  if limit and not r.lua_filter and not r.ttl_fn then
    want = limit - r.returned
    if want > PAGE then want = PAGE end
  end
  r.max = want
  local items, nk, examined, misuse = r.h:page(r)
  if not items then
    r.done, r.pos, r.n = true, 0, 0
    return nil, nk, examined, misuse
  end
  local n
  if r.lua_filter then
    items, n = filter_page(r, items) -- the binding gave the item count
  else
    n = #items
  end
  r.items, r.pos, r.n, r.next_key = items, 0, n, nk
  if nk == nil then r.done = true end
  local stats = r.stats
  if stats then
    stats.examined = stats.examined + examined
    stats.decoded = stats.decoded + n
    stats.pages = stats.pages + 1
  end
  return true
end

-- The next item, or nil at the end, or nil, message, code when a page
-- cannot be read.
local function reader_read(r)
  local limit, ttl_fn = r.limit, r.ttl_fn
  -- with a Lua filter, filter_page applied it and the TTL function
  if r.lua_filter then ttl_fn = nil end
  while true do
    if limit and r.returned >= limit then return nil end
    local pos = r.pos
    if pos < r.n then
      pos = pos + 1
      r.pos = pos
      local it = r.items[pos]
      if not (ttl_fn and ttl_fn(it, r.now)) then
        r.returned = r.returned + 1
        r.last = it
        local lp = r.late_projection
        if lp then return lp:apply(it) end
        return it
      end
    else
      local ok, msg, code, misuse = reader_fill(r)
      if not ok then return nil, msg, code, misuse end
    end
  end
end

-- The resume key once reader_read has returned nil: nil when nothing
-- remains.
local function reader_state(r)
  -- stopped on the limit inside a page: resume after the last item given
  if r.pos < r.n then return key_of(r.db, r.last, r.index) end
  if r.done then return nil end
  return r.next_key
end

-- A page that cannot be read, inside an iterator: raised.
local function page_failed(fn, msg, code, misuse)
  failed(fn, msg, code, misuse) -- raises misuse
  error(msg, 3)
end

-- Whether the key value v passes the binding's kind check for sure: a
-- string, or a number other than NaN; or nil where none may be given.
local function plain_key(v, may_be_nil)
  local t = type(v)
  return t == "string" or (t == "number" and v == v) or (v == nil and may_be_nil)
end

-- Whether every key value of the spec passes it for sure.
local function plain_keys(spec, scanning)
  return plain_key(spec.pk, scanning) and plain_key(spec.lo, true) and plain_key(spec.hi, true)
    and plain_key(spec.start, true)
end

-- Pages hold no transaction between calls, so there is nothing to release
-- when a loop breaks early: one shared closing value serves every loop.
local CLOSER = setmetatable({}, { __close = function() end })

--- An iterator over a query (`scanning` false, `pk` its partition value)
-- or a scan, as DB:query and DB:scan return it.
-- @raise on invalid options or key values, an unknown index, a filter
--   string that does not parse, a closed handle
function M.iterate(self, fn, pk, opts, scanning)
  handle.check_open(self, fn)
  local spec, lua_filter, limit = build_spec(self, fn, pk, opts, scanning)
  if not spec then errors.raise(lua_filter) end
  -- the key values, the index and start_after are judged now, not at the
  -- first item (the binding's check_page; key values that are strings or
  -- numbers other than NaN always pass its kind check, which short queries
  -- would pay a tenth of their set-up for)
  if spec.index ~= nil or spec.start_after ~= nil or not plain_keys(spec, scanning) then
    local ok, msg, code, misuse = self._c:check_page(spec)
    if not ok then failed(fn, msg, code, misuse) end
  end
  local r = reader_new(self, spec, lua_filter, limit)
  -- a closure, so the iterator also works called on its own (`it()`);
  -- it raises when a page cannot be read
  if not limit and (lua_filter or not r.ttl_fn) and not r.late_projection then
    -- the common loop, with its state in upvalues (the hot path of scans);
    -- a Lua filter and the TTL function were applied by filter_page
    local items, pos, n = nil, 0, 0
    return function()
      while true do
        if pos < n then
          pos = pos + 1
          return items[pos]
        else
          local filled, fmsg, fcode, fmisuse = reader_fill(r)
          if not filled then
            if fmsg ~= nil then page_failed(fn, fmsg, fcode, fmisuse) end
            return nil
          end
          items, pos, n = r.items, 0, r.n
        end
      end
    end, nil, nil, CLOSER
  end
  return function()
    local it, rmsg, rcode, rmisuse = reader_read(r)
    if it == nil and rmsg ~= nil then page_failed(fn, rmsg, rcode, rmisuse) end
    return it
  end, nil, nil, CLOSER
end

--- One page of a query or a scan, as DB:query_page and DB:scan_page
-- return it: items, next_key; or nil, message, code.
-- @raise on invalid options (other than a filter string that does not
--   parse), invalid key values, an unknown index, a closed handle
function M.page(self, fn, pk, opts, scanning)
  handle.check_open(self, fn)
  local spec, lua_filter, limit = build_spec(self, fn, pk, opts, scanning)
  if not spec then return nil, lua_filter, "ValidationError" end
  local r = reader_new(self, spec, lua_filter, limit or PAGE)
  local items, n = {}, 0
  while true do
    local it, msg, code, misuse = reader_read(r)
    if it == nil then
      if msg ~= nil then return failed(fn, msg, code, misuse) end
      break
    end
    n = n + 1
    items[n] = it
  end
  return items, reader_state(r)
end

--- One page of a query or a scan as DynamoDB JSON, for `dynafile serve`
-- (DB:_query_page_json, DB:_scan_page_json): the binding writes the
-- items' text from their stored bytes (src/itemjson.c), taking them until
-- their DynamoDB sizes reach `budget` bytes.
-- @return text (the items' JSON, joined by commas), count, bytes,
--   next_key, examined, last (the last item taken, when the budget was
--   reached or `want_last` is true and the page is full); or, when an item
--   needs the Lua path (or a TTL function or Lua filter is set), the items
--   as tables and next_key, as M.page gives them; or nil, message, code
-- @raise as M.page
function M.page_json(self, fn, pk, opts, scanning, budget, want_last)
  handle.check_open(self, fn)
  local spec, lua_filter, limit = build_spec(self, fn, pk, opts, scanning)
  if not spec then return nil, lua_filter, "ValidationError" end
  if lua_filter or self._ttl_fn or spec.projection then
    return M.page(self, fn, pk, opts, scanning)
  end
  if self._timed then spec.now = now(self) end
  spec.max = limit or PAGE
  spec.json, spec.json_last = budget, want_last and true or false
  local text, a, b, c, d, e = self._c:page(spec)
  if text == nil then return failed(fn, a, b, c) end
  return text, a, b, c, d, e
end

return M
