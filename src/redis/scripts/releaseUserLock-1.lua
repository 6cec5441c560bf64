-- Releases a user lock only if this worker still holds it (workers/userLock.ts release): after the lock's
-- expiry another worker may hold it, and deleting theirs would let two requests for one user overlap.
-- KEYS: the lock. ARGV: the holder's token. Returns 1 when released, 0 when the lock was not ours.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
