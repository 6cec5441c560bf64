-- Records a rejected or duplicate row, counting it only the first time its place is seen
-- (ledger/admission.ts reject, duplicate, through ledger/scriptCalls.ts recordOnce).
-- KEYS: records hash (rejected or duplicates), the counters hash of the same shard. ARGV: location, json,
-- counter field (META).
-- Returns 1 when the row was new, 0 when it was already recorded.
local ROWS_READ = 'rows_read' -- META.rowsRead

if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('HINCRBY', KEYS[2], ROWS_READ, 1)
  redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
  return 1
end
return 0
