-- Admits the rows an ingest read (ledger/runLedger.ts admit).
-- KEYS: seen, outcomes, meta, skipped (of the run), migrated (cross-run set).
-- ARGV: force ('1'/'0'), then fp1, place1, fp2, place2, …
-- Returns per row: 'n' new (queue it), 'm' already migrated by an earlier run (skip, unless forced), 'q' seen
-- at this same place without outcome (queue again: re-adding an existing job id is a no-op), 'd' seen here and
-- finished or skipped (nothing to do), or 'u<place>' duplicate of another row of this run.
local ROWS_READ = 'rows_read' -- META.rowsRead
local ROWS_QUEUED = 'rows_queued' -- META.rowsQueued
local ROWS_ALREADY_MIGRATED = 'rows_already_migrated' -- META.rowsAlreadyMigrated

local out = {}
local fresh, queued, migrated = 0, 0, 0
local force = ARGV[1] == '1'
for i = 2, #ARGV, 2 do
  local fp, loc = ARGV[i], ARGV[i + 1]
  local first = redis.call('HGET', KEYS[1], fp)
  if not first then
    redis.call('HSET', KEYS[1], fp, loc)
    fresh = fresh + 1
    if not force and redis.call('SISMEMBER', KEYS[5], fp) == 1 then
      redis.call('HSET', KEYS[4], fp, loc)
      migrated = migrated + 1
      out[#out + 1] = 'm'
    else
      queued = queued + 1
      out[#out + 1] = 'n'
    end
  elseif first == loc then
    if redis.call('HEXISTS', KEYS[2], fp) == 1 or redis.call('HEXISTS', KEYS[4], fp) == 1 then out[#out + 1] = 'd' else out[#out + 1] = 'q' end
  else
    out[#out + 1] = 'u' .. first
  end
end
if fresh > 0 then redis.call('HINCRBY', KEYS[3], ROWS_READ, fresh) end
if queued > 0 then redis.call('HINCRBY', KEYS[3], ROWS_QUEUED, queued) end
if migrated > 0 then redis.call('HINCRBY', KEYS[3], ROWS_ALREADY_MIGRATED, migrated) end
return out
