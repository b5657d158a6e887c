-- ttl_sessions.lua -- web sessions that expire by themselves.
--
-- Each session is one item keyed by its id (a table with a partition key
-- only), holding `expires_at` in epoch seconds: the TTL attribute.  The
-- example drives time with its own clock, so it runs instantly:
--   * an expired session is invisible to reads from the moment it expires,
--     before anything deletes it;
--   * activity slides the expiry forward with update_item;
--   * purge_expired deletes what expired, and a stream listener hears each
--     deletion marked `expired = true` (here it keeps a per-user count of
--     live sessions, as an application would keep a metric or an audit log);
--   * a logout is an ordinary delete, which the listener tells apart.
local dynafile = require "dynafile"

local dir = os.tmpname()
os.remove(dir)

local now = 1700000000
local function clock() return now end
local TTL = 30 * 60 -- sessions live 30 minutes after their last use

local db = assert(dynafile.open(dir, {
  pk = "session", sk = false, -- sessions have no sort key
  ttl = "expires_at",
  clock = clock,
}))

-- The listener: every committed change, after the commit, in order.
local live_by_user, expired_log, logouts = {}, {}, {}
local h = db:add_stream_listener(function(ev)
  if ev.action == "PUT" and not ev.old then
    live_by_user[ev.new.user] = (live_by_user[ev.new.user] or 0) + 1
  elseif ev.action == "DELETE" then
    live_by_user[ev.old.user] = live_by_user[ev.old.user] - 1
    if ev.expired then
      expired_log[#expired_log + 1] = ev.old.session
    else
      logouts[#logouts + 1] = ev.old.session
    end
  end
end)

-- Start a session; the condition makes the id unique (no silent overwrite).
local function login(id, user)
  return db:put_item({ session = id, user = user, expires_at = now + TTL, hits = 0 },
                     { condition = "not exists(session)" })
end

-- Touch a session: slide its expiry, count the hit.  A session that has
-- expired is gone, so the condition fails and the caller must log in again.
local function touch(id)
  return db:update_item({ session = id },
    { set = { expires_at = now + TTL }, add = { hits = 1 } },
    { condition = "exists(session)" })
end

assert(login("s-alice-1", "alice"))
assert(login("s-alice-2", "alice"))
assert(login("s-bob-1", "bob"))
assert(login("s-carol-1", "carol"))
local ok, _, code = login("s-bob-1", "mallory")
assert(ok == nil and code == "ConditionalCheckFailed", "session ids are unique")
assert(live_by_user.alice == 2 and live_by_user.bob == 1 and live_by_user.carol == 1)

-- 20 minutes later alice uses her first session; carol logs out.
now = now + 20 * 60
assert(touch("s-alice-1").hits == 1)
assert(db:delete_item { session = "s-carol-1" })
assert(#logouts == 1 and logouts[1] == "s-carol-1")

-- 31 minutes after login: s-alice-2 and s-bob-1 have expired (their
-- expires_at is now in the past); s-alice-1 was touched and lives on.
now = now + 11 * 60
assert(db:get_item { session = "s-alice-2" } == nil, "expired: invisible at once")
assert(db:get_item { session = "s-bob-1" } == nil)
assert(db:get_item({ session = "s-alice-1" }).hits == 1)
local visible = {}
for s in db:scan() do visible[#visible + 1] = s.session end
assert(#visible == 1 and visible[1] == "s-alice-1", "scan hides expired sessions too")

-- Touching an expired session fails: the user has to log in again.
ok, _, code = touch("s-bob-1")
assert(ok == nil and code == "ConditionalCheckFailed")

-- Nothing deleted the expired sessions yet, so no expiry event so far
-- (the failed touch above wrote nothing).  Purge them now: one DELETE
-- event each, marked expired.  (Writes also purge a few expired items as
-- they go, so a busy database stays tidy without explicit purges.)
assert(#expired_log == 0)
local purged = assert(db:purge_expired())
table.sort(expired_log)
assert(purged == 2, "two sessions expired, got " .. purged)
assert(#expired_log == 2 and expired_log[1] == "s-alice-2" and expired_log[2] == "s-bob-1")
assert(live_by_user.alice == 1 and live_by_user.bob == 0 and live_by_user.carol == 0)
assert(db:stat().items == 1, "only the live session is stored")
print("expired:", table.concat(expired_log, ", "))

-- Much later everything has expired; purging twice is harmless.
now = now + 24 * 3600
assert(db:purge_expired() == 1)
assert(db:purge_expired() == 0)
assert(#expired_log == 3 and live_by_user.alice == 0)
assert(db:stat().items == 0)

assert(db:remove_stream_listener(h))
db:close()
os.execute("rm -rf '" .. dir .. "'")
print("ttl_sessions: ok")
