-- Numbers runs in order of first use, so that the cross-run index stores a small number instead of a run id
-- (ledger/runNumbering.ts, through ledger/scriptCalls.ts runNumber). KEYS: the run numbers hash (fields `r:<run id>` → number, `n:<number>` →
-- run id, and the count). ARGV: run id. Returns the run's number (from 1).
local COUNT = 'count'
local n = redis.call('HGET', KEYS[1], 'r:' .. ARGV[1])
if n then return tonumber(n) end
n = redis.call('HINCRBY', KEYS[1], COUNT, 1)
redis.call('HSET', KEYS[1], 'r:' .. ARGV[1], n, 'n:' .. n, ARGV[1])
return n
