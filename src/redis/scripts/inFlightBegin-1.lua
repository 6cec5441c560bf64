-- A row's request is about to go (workers/inFlightRows.ts begin): the row's in-flight hash names this worker
-- process as its sender, and answers which process was its sender before (still named only when that process
-- stopped before it could say the request was over) and how many processes have stopped with the row in flight.
--
-- KEYS: the row's in-flight hash.
-- ARGV: this worker process's id, the hash's ttl (ms).
-- Returns {the previous sender's id, or '' when none; deaths counted so far}.
local WORKER = 'w' -- FLIGHT.worker
local DEATHS = 'd' -- FLIGHT.deaths

local key = KEYS[1]
local before = redis.call('HMGET', key, WORKER, DEATHS)
redis.call('HSET', key, WORKER, ARGV[1])
redis.call('PEXPIRE', key, ARGV[2])
return {before[1] or '', tonumber(before[2] or '0')}
