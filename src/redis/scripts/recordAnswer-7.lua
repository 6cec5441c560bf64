-- Records a row's final answer and counts the request that brought it, in one call (ledger/outcomes.ts through
-- ledger/scriptCalls.ts recordAnswer). All keys are of the row's shard.
-- KEYS: the run shard's counters (and row table state), wide records, history, recent errors, timeline, latency;
-- the index shard's state.
-- ARGV: the run's bucket prefix, the index's bucket prefix, record key, the row's record (ledger/rowRecord.ts: a
-- succeeded or failed row's; its first byte says which), onlyIfAbsent ('1'/'0'), the error summary JSON ('' for
-- a success), the outcome's timeline field, the index value ('' for a failure); then whether a request came with
-- the answer ('1'/'0') and, if so, its status field, its timeline field, its latency field, and its rate-limited
-- timeline field ('' when it was not rate limited).
-- The same answer again (the very same record: a call sent twice) changes nothing. Otherwise the request is
-- counted in any case. The row moves between the succeeded/failed counters when a later answer changes its
-- status, keeping the replaced record in the history. A row the table does not have (a failover lost its
-- admission but not its job) is counted as admitted and queued, as admit would have. A success enters the
-- cross-run index (the token, its user and payload hashes, this run); a failure joins the short list of recent
-- errors.
-- Returns 1 when written (or already there), 0 when onlyIfAbsent found a final answer there.
local ROWS_READ = 'rows_read' -- META.rowsRead
local ROWS_QUEUED = 'rows_queued' -- META.rowsQueued
local ROWS_SUCCEEDED = 'rows_succeeded' -- META.rowsSucceeded
local ROWS_FAILED = 'rows_failed' -- META.rowsFailed
local REQUESTS_SENT = 'requests_sent' -- META.requestsSent
local SUCCEEDED = 's' -- RECORD.succeeded
local FAILED = 'f' -- RECORD.failed
local TOKEN_KEY = 10 -- TOKEN_FINGERPRINT_BYTES
local RECENT_ERRORS = 20 -- RECENT_ERRORS

--- @include "table"

local key, record = ARGV[3], ARGV[4]
local status = string.sub(record, 1, 1)
local run = tbl_open(KEYS[1], ARGV[1], KEYS[2])
local prev = tbl_get(run, key)
if prev == record then return 1 end

if ARGV[9] == '1' then
  redis.call('HINCRBY', KEYS[1], REQUESTS_SENT, 1)
  redis.call('HINCRBY', KEYS[1], ARGV[10], 1)
  redis.call('HINCRBY', KEYS[5], ARGV[11], 1)
  redis.call('HINCRBY', KEYS[6], ARGV[12], 1)
  if ARGV[13] ~= '' then redis.call('HINCRBY', KEYS[5], ARGV[13], 1) end
end

local prevStatus = prev and string.sub(prev, 1, 1)
if prevStatus ~= SUCCEEDED and prevStatus ~= FAILED then prevStatus = false end
if prevStatus and ARGV[5] == '1' then return 0 end
if prevStatus then
  -- history entry: key length, key, then the replaced record
  redis.call('RPUSH', KEYS[3], string.char(#key) .. key .. prev)
end
if not prev then
  redis.call('HINCRBY', KEYS[1], ROWS_READ, 1)
  redis.call('HINCRBY', KEYS[1], ROWS_QUEUED, 1)
end
tbl_put(run, key, record, prev)
tbl_close(run)
local counters = { [SUCCEEDED] = ROWS_SUCCEEDED, [FAILED] = ROWS_FAILED }
if prevStatus ~= status then
  if prevStatus then redis.call('HINCRBY', KEYS[1], counters[prevStatus], -1) end
  redis.call('HINCRBY', KEYS[1], counters[status], 1)
end
redis.call('HINCRBY', KEYS[5], ARGV[7], 1)
if status == SUCCEEDED then
  local index = tbl_open(KEYS[7], ARGV[2], false)
  local token = string.sub(key, 1, TOKEN_KEY)
  tbl_put(index, token, ARGV[8], tbl_get(index, token))
  tbl_close(index)
else
  redis.call('LPUSH', KEYS[4], ARGV[6])
  redis.call('LTRIM', KEYS[4], 0, RECENT_ERRORS - 1)
end
return 1
