-- Re-opens failed rows for a retry (ledger/runLedger.ts reopen).
-- KEYS: outcomes, meta, history. ARGV: fp1, expected1, fp2, expected2, …
-- Each outcome still exactly as the caller read it moves to the history and the row counts as pending again.
-- One that changed meanwhile (its retry already finished) is left alone. Returns how many were re-opened.
local ROWS_FAILED = 'rows_failed' -- META.rowsFailed
local RETRIES = 'retries' -- META.retries

local n = 0
for i = 1, #ARGV, 2 do
  local current = redis.call('HGET', KEYS[1], ARGV[i])
  if current and current == ARGV[i + 1] then
    redis.call('RPUSH', KEYS[3], ARGV[i] .. ' ' .. current)
    redis.call('HDEL', KEYS[1], ARGV[i])
    redis.call('HINCRBY', KEYS[2], ROWS_FAILED, -1)
    n = n + 1
  end
end
if n > 0 then redis.call('HINCRBY', KEYS[2], RETRIES, 1) end
return n
