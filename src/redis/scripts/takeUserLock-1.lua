-- Takes a user's lock on its own (workers/userLock.ts, where the lock and the pace hash are in different cluster
-- slots): free, or held by an earlier attempt of the same row (includes/userLock.lua).
-- KEYS: the lock. ARGV: the token ("<owner>#<random>"), the expiry (ms), the owner ('' for none).
-- Returns 1 when taken, 0 when another row holds it.
--- @include "userLock"

if takeUserLock(KEYS[1], ARGV[1], ARGV[2], ARGV[3] or '') then return 1 end
return 0
