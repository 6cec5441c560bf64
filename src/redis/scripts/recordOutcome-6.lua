-- Writes a row's outcome (ledger/runLedger.ts recordOutcome).
-- KEYS: outcomes, meta, migrated (cross-run set), history, errors, timeline.
-- ARGV: fp, encoded outcome, status code ('s'/'f'), onlyIfAbsent ('1'/'0'), now (ISO), error summary JSON (for
-- failures), timeline field of this outcome.
-- Moves the row between the succeeded/failed counters when a later attempt changes its status, keeping the
-- replaced outcome in the history. A success joins the cross-run set of migrated fingerprints; a failure joins
-- the short list of recent errors. Returns 1 when written, 0 when onlyIfAbsent found an outcome there.
local ROWS_SUCCEEDED = 'rows_succeeded' -- META.rowsSucceeded
local ROWS_FAILED = 'rows_failed' -- META.rowsFailed
local LAST_OUTCOME_AT = 'last_outcome_at' -- META.lastOutcomeAt
local SUCCEEDED = 's' -- STATUS_CODES.succeeded
local FAILED = 'f' -- STATUS_CODES.failed
-- where the status code sits in the stored array (1-based)
local STATUS_INDEX = 1 -- STATUS_INDEX
local RECENT_ERRORS = 20

local counters = { [SUCCEEDED] = ROWS_SUCCEEDED, [FAILED] = ROWS_FAILED }
local prev = redis.call('HGET', KEYS[1], ARGV[1])
if prev and ARGV[4] == '1' then return 0 end
local prevStatus = false
if prev then
  prevStatus = cjson.decode(prev)[STATUS_INDEX]
  redis.call('RPUSH', KEYS[4], ARGV[1] .. ' ' .. prev)
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if prevStatus ~= ARGV[3] then
  if prevStatus then redis.call('HINCRBY', KEYS[2], counters[prevStatus], -1) end
  redis.call('HINCRBY', KEYS[2], counters[ARGV[3]], 1)
end
redis.call('HSET', KEYS[2], LAST_OUTCOME_AT, ARGV[5])
redis.call('HINCRBY', KEYS[6], ARGV[7], 1)
if ARGV[3] == SUCCEEDED then
  redis.call('SADD', KEYS[3], ARGV[1])
else
  redis.call('LPUSH', KEYS[5], ARGV[6])
  redis.call('LTRIM', KEYS[5], 0, RECENT_ERRORS - 1)
end
return 1
