-- Re-opens failed rows of one shard for a retry (ledger/outcomes.ts through ledger/scriptCalls.ts reopenFailed).
-- KEYS: the run shard's counters (and row table state), wide records, history.
-- ARGV: the run's bucket prefix, then key1, expected1, key2, expected2, … (expected: the failed record as read).
-- Each failed record still exactly as the caller read it moves to the history, and its row is queued again
-- (pending). One that changed meanwhile (its retry already finished) is left alone, so a second call with the
-- same records re-opens none twice. Returns how many were re-opened.
local ROWS_FAILED = 'rows_failed' -- META.rowsFailed
local QUEUED = 'q' -- RECORD.queued

--- @include "record"
--- @include "table"

local run = tbl_open(KEYS[1], ARGV[1], KEYS[2])
local n = 0
for i = 2, #ARGV, 2 do
  local key, expected = ARGV[i], ARGV[i + 1]
  local current = tbl_get(run, key)
  if current and current == expected then
    redis.call('RPUSH', KEYS[3], string.char(#key) .. key .. current)
    local _, place, user = rec_head(current)
    tbl_put(run, key, rec_make(QUEUED, place, user), current)
    n = n + 1
  end
end
if n > 0 then redis.call('HINCRBY', KEYS[1], ROWS_FAILED, -n) end
tbl_close(run)
return n
