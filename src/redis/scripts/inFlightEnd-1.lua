-- A row's request is over (workers/inFlightRows.ts end): it came back, so it did not kill this worker, and the
-- row's count of deaths starts again from nothing: the hash goes. Only the sender named may do it: after a lost
-- job lock another process may be the row's sender by now.
--
-- KEYS: the row's in-flight hash.
-- ARGV: this worker process's id.
-- Returns 1 when the hash was deleted, else 0.
local WORKER = 'w' -- FLIGHT.worker

local key = KEYS[1]
if redis.call('HGET', key, WORKER) ~= ARGV[1] then return 0 end
return redis.call('DEL', key)
