--- dynafile.listeners: stream listeners and the delivery of events to
-- them, for both backends (a local database and a DynamoDB table).
--
-- The state is per database (or table) and shared by every handle on it
-- in this Lua state: `st.listeners`, the list of registered listeners
-- (`{fn = function}` each), replaced, never changed in place, when one is
-- added or removed; and the queue of events being delivered (`st.queue`
-- from `st.qhead` to `st.qtail`, pairs of the handle that made the write
-- and the event; `st.dispatching`, the coroutine delivering).  A handle
-- has `_st` (that state) and `_listener_error` (the open option).
--
-- Invariant: every listener hears every commit's events in commit order,
-- and delivery never raises into the write that made them -- whatever a
-- listener raises is reported (`listener_error`, else stderr).
-- @module dynafile.listeners
-- @local

local type, pcall, tostring, ipairs = type, pcall, tostring, ipairs
local string_format = string.format
local io = io
local co_running, co_status = coroutine.running, coroutine.status
local unpack = table.unpack or unpack -- luacheck: ignore 143

local M = {}

--- Whether any listener hears the database of handle `self`.
function M.has_listeners(self)
  return #self._st.listeners > 0
end

--- Register `fn` in state `st` (the caller checked it is a function).
-- @return the listener's handle, for `remove`
function M.add(st, fn)
  local list = { unpack(st.listeners) }
  local h = { fn = fn }
  list[#list + 1] = h
  st.listeners = list
  return h
end

--- Remove the listener handle `h` from state `st`.
-- @treturn boolean whether it was registered
function M.remove(st, h)
  local list, found = {}, false
  for _, x in ipairs(st.listeners) do
    if x == h then found = true else list[#list + 1] = x end
  end
  st.listeners = list
  return found
end

-- A description of an error value that never raises: tostring(err), or,
-- when its __tostring raises or gives no string, what kind of value it is.
local function describe(err)
  local ok, s = pcall(tostring, err)
  if ok and type(s) == "string" then return s end
  return string_format("(a %s whose __tostring failed)", type(err))
end

-- Report a listener's error: to the listener_error function of the handle
-- that made the write, else (or when that raises too) on stderr.  Never
-- raises: a report that fails is dropped.
local function report_listener_error(self, err, event)
  local h = self._listener_error
  local msg
  if h then
    local ok, e2 = pcall(h, err, event)
    if ok then return end
    msg = describe(err) .. " (and the listener_error handler failed: " .. describe(e2) .. ")"
  else
    msg = describe(err)
  end
  pcall(function() io.stderr:write("dynafile: stream listener error: ", msg, "\n") end)
end

-- Deliver the queue of st, in order, to the listeners registered when each
-- event's delivery starts.  Raises only on a memory error.
local function deliver(st)
  local q = st.queue
  while st.qhead < st.qtail do
    local head = st.qhead
    local by, ev = q[head], q[head + 1]
    q[head], q[head + 1] = nil, nil
    st.qhead = head + 2
    local list = st.listeners
    for j = 1, #list do
      local ok, err = pcall(list[j].fn, ev)
      if not ok then report_listener_error(by, err, ev) end
    end
  end
end

--- Deliver a commit's events to every listener, in commit order.  A write
-- made by a listener commits at once, but its events are queued behind
-- the events still being delivered, so every listener sees every commit in
-- order.  An event goes to the listeners registered when its delivery
-- starts.  Never raises: whatever a listener raises -- an error value
-- whose __tostring raises included -- is reported, and the write that
-- made the events has committed whatever happens here.
-- @param self the handle that made the write
-- @tparam table events the events, in commit order
function M.dispatch(self, events)
  local st = self._st
  local q, tail = st.queue, st.qtail
  for i = 1, #events do
    q[tail + 1], q[tail + 2] = self, events[i]
    tail = tail + 2
  end
  st.qtail = tail
  -- The coroutine delivering (true: the main thread of Lua 5.1).  A write
  -- made while it delivers -- by a listener, or a coroutine a listener
  -- resumed -- queues.  A delivering coroutine that is suspended (a
  -- listener yielded) or dead hands the queue over, or the events of
  -- other coroutines' writes would wait for it, forever if abandoned.
  local me = co_running() or true
  local owner = st.dispatching
  if owner and (owner == me or type(owner) ~= "thread"
      or co_status(owner) == "normal") then
    return
  end
  st.dispatching = me
  local ok, err = pcall(deliver, st)
  if st.dispatching == me then
    if ok then st.qhead, st.qtail = 1, 0 end
    st.dispatching = false
  end
  if not ok then
    -- out of memory while delivering: the write has committed and its
    -- call still says so; what is left in the queue goes with the next
    -- delivery
    pcall(function()
      io.stderr:write("dynafile: stream listener delivery: ", describe(err), "\n")
    end)
  end
end

return M
