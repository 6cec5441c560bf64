-- Records a row's final answer and counts the request that brought it, in one call (ledger/runLedger.ts
-- recordAnswer, recordOutcome). All keys are of the row's shard.
-- KEYS: the run shard's counters (and row table state), wide records, failed outcomes, history, recent errors,
-- timeline, latency; the index shard's state.
-- ARGV: the run's bucket prefix, the index's bucket prefix, record key, status ('s'/'f'), the row's record
-- (a succeeded record, or a failed record's head), the failed outcome (packed; '' for a success), onlyIfAbsent
-- ('1'/'0'), the error summary JSON ('' for a success), the outcome's timeline field, the index value ('' for a
-- failure); then the request ('' fields when there was none): its status field, its timeline field, its latency
-- field, and its rate-limited timeline field ('' when it was not rate limited).
-- The request is counted in any case. The row moves between the succeeded/failed counters when a later answer
-- changes its status, keeping the replaced outcome in the history. A success enters the cross-run index (the
-- token, its user and payload hashes, this run); a failure joins the short list of recent errors.
-- Returns 1 when written, 0 when onlyIfAbsent found a final answer there.
local ROWS_SUCCEEDED = 'rows_succeeded' -- META.rowsSucceeded
local ROWS_FAILED = 'rows_failed' -- META.rowsFailed
local REQUESTS_SENT = 'requests_sent' -- META.requestsSent
local SUCCEEDED = 's' -- RECORD.succeeded
local FAILED = 'f' -- RECORD.failed
local TOKEN_KEY = 10 -- TOKEN_FINGERPRINT_BYTES
local RECENT_ERRORS = 20

--- @include "table"

local key, status = ARGV[3], ARGV[4]
if ARGV[11] ~= '' then
  redis.call('HINCRBY', KEYS[1], REQUESTS_SENT, 1)
  redis.call('HINCRBY', KEYS[1], ARGV[11], 1)
  redis.call('HINCRBY', KEYS[6], ARGV[12], 1)
  redis.call('HINCRBY', KEYS[7], ARGV[13], 1)
  if ARGV[14] ~= '' then redis.call('HINCRBY', KEYS[6], ARGV[14], 1) end
end

local run = tbl_open(KEYS[1], ARGV[1], KEYS[2])
local prev = tbl_get(run, key)
local prevStatus = prev and string.sub(prev, 1, 1)
if prevStatus ~= SUCCEEDED and prevStatus ~= FAILED then prevStatus = false end
if prevStatus and ARGV[7] == '1' then return 0 end
if prevStatus then
  -- history entry: status, key length, key, then the record (or the failed outcome)
  local replaced = prev
  if prevStatus == FAILED then replaced = redis.call('HGET', KEYS[3], key) or '' end
  redis.call('RPUSH', KEYS[4], prevStatus .. string.char(#key) .. key .. replaced)
end
tbl_put(run, key, ARGV[5], prev)
tbl_close(run)
if status == FAILED then
  redis.call('HSET', KEYS[3], key, ARGV[6])
elseif prevStatus == FAILED then
  redis.call('HDEL', KEYS[3], key)
end
local counters = { [SUCCEEDED] = ROWS_SUCCEEDED, [FAILED] = ROWS_FAILED }
if prevStatus ~= status then
  if prevStatus then redis.call('HINCRBY', KEYS[1], counters[prevStatus], -1) end
  redis.call('HINCRBY', KEYS[1], counters[status], 1)
end
redis.call('HINCRBY', KEYS[6], ARGV[9], 1)
if status == SUCCEEDED then
  local index = tbl_open(KEYS[8], ARGV[2], false)
  local token = string.sub(key, 1, TOKEN_KEY)
  tbl_put(index, token, ARGV[10], tbl_get(index, token))
  tbl_close(index)
else
  redis.call('LPUSH', KEYS[5], ARGV[8])
  redis.call('LTRIM', KEYS[5], 0, RECENT_ERRORS - 1)
end
return 1
