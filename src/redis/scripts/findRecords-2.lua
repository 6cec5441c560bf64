-- Reads records of one shard's row table by key (ledger/outcomes.ts, ledger/conflicts.ts, through ledger/scriptCalls.ts findRecords).
-- KEYS: the run shard's counters (row table state), wide records. ARGV: the run's bucket prefix, then keys.
-- Returns each key's record, or false.

--- @include "table"

local run = tbl_open(KEYS[1], ARGV[1], KEYS[2])
local out = {}
for i = 2, #ARGV do out[#out + 1] = tbl_get(run, ARGV[i]) end
return out
