-- Re-opens failed rows of one shard for a retry (ledger/runLedger.ts reopen).
-- KEYS: the run shard's counters (and row table state), wide records, failed outcomes, history.
-- ARGV: the run's bucket prefix, then key1, expected1, key2, expected2, … (expected: the failed outcome as read).
-- Each failed outcome still exactly as the caller read it moves to the history, and its row is queued again
-- (pending). One that changed meanwhile (its retry already finished) is left alone. Returns how many were re-opened.
local ROWS_FAILED = 'rows_failed' -- META.rowsFailed
local QUEUED = 'q' -- RECORD.queued
local FAILED = 'f' -- RECORD.failed

--- @include "table"

local run = tbl_open(KEYS[1], ARGV[1], KEYS[2])
local n = 0
for i = 2, #ARGV, 2 do
  local key, expected = ARGV[i], ARGV[i + 1]
  local current = redis.call('HGET', KEYS[3], key)
  if current and current == expected then
    redis.call('RPUSH', KEYS[4], FAILED .. string.char(#key) .. key .. current)
    redis.call('HDEL', KEYS[3], key)
    local rec = tbl_get(run, key)
    if rec then tbl_put(run, key, QUEUED .. string.sub(rec, 2), rec) end
    n = n + 1
  end
end
if n > 0 then redis.call('HINCRBY', KEYS[1], ROWS_FAILED, -n) end
tbl_close(run)
return n
