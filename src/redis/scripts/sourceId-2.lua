-- Numbers a run's sources in order of first use (ledger/runNumbering.ts, through ledger/scriptCalls.ts sourceNumber).
-- KEYS: sources hash, meta. ARGV: source name. Returns the source's number.
local SOURCE_COUNT = 'source_count' -- META.sourceCount

local id = redis.call('HGET', KEYS[1], ARGV[1])
if id then return tonumber(id) end
id = redis.call('HINCRBY', KEYS[2], SOURCE_COUNT, 1) - 1
redis.call('HSET', KEYS[1], ARGV[1], id)
return id
