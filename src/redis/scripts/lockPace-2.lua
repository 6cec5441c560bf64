-- Takes a user's lock and the pacer's next slot in one call (workers/userLock.ts acquire with a pacer,
-- workers/pacer.ts takeHolding): the two Redis calls every request needs before it goes, made one. The slot is
-- taken exactly as pace-1.lua's 'take' takes it (includes/paceSchedule.lua), and only once the lock is held: a
-- request that cannot go for its user takes no slot, so the pacer's log counts only requests that were sent.
-- On a Redis Cluster both keys must be in one slot (workers/userLock.ts checks, and takes them apart otherwise).
--
-- KEYS: the user's lock, the pace hash.
-- ARGV: the lock's token, the lock's expiry (ms), the slot interval (ms, may be fractional), the max wait (ms),
--   the pace hash's ttl (ms), the lateness the slot grid absorbs (ms, includes/paceSchedule.lua), the lock's
--   owner (the row's job id, '' for none: includes/userLock.lua).
-- Returns {-2} when another request holds the lock (nothing taken); {-1, now} when the schedule is booked
-- further ahead than the max wait (the lock is given back); else {wait ms, now, the slot (ms, a string)}, the
-- lock held by this token.
local key = KEYS[2]

--- @include "paceSchedule"
--- @include "userLock"

if not takeUserLock(KEYS[1], ARGV[1], ARGV[2], ARGV[7] or '') then return {-2} end
local taken = takeSlot(tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6] or '0'))
if taken[1] < 0 then redis.call('DEL', KEYS[1]) end
return taken
