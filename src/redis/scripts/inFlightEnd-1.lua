-- A row's request is over (workers/inFlightRows.ts end). A finished row leaves nothing; an unfinished one keeps
-- its count of deaths, if it has one, without a sender. Only the sender named may clear the name: after a lost
-- job lock another process may be the row's sender by now.
--
-- KEYS: the row's in-flight hash.
-- ARGV: this worker process's id, '1' when the row is finished (its outcome written) else '0'.
-- Returns 1 when something was cleared, else 0.
local WORKER = 'w' -- FLIGHT.worker
local DEATHS = 'd' -- FLIGHT.deaths

local key = KEYS[1]
if ARGV[2] == '1' then return redis.call('DEL', key) end
if redis.call('HGET', key, WORKER) ~= ARGV[1] then return 0 end
if redis.call('HEXISTS', key, DEATHS) == 0 then return redis.call('DEL', key) end
redis.call('HDEL', key, WORKER)
return 1
