-- Records an admitted row given by a transaction id as a conflict by purchase after its lookup: the purchase its
-- signed transaction holds is another user's (claimPurchase-3.lua said whose). Held (onConflict 'hold'), the row's
-- record becomes a held one and the row moves from rows_queued to rows_held, exactly as admission holds a row
-- (admit-4.lua); sent anyway ('send'), only the conflict is recorded and the row goes on to be posted. Either way
-- it is counted in rows_conflict and listed in the conflicts hash, in the form admit-4.lua writes for a purchase
-- an earlier run migrated ('P': ledger/rowRecord.ts decodeConflict). All keys are of the row's shard (by its
-- record key).
-- KEYS: the run shard's counters (and row table state), its wide records, its conflicts.
-- ARGV: the run's bucket prefix, the record key, the row's place and user (ledger/rowRecord.ts), hold ('1'/'0'),
-- the other side: 'P', a varint length and the purchase index entry (or claim) naming the other user's row, then
-- the shared original transaction id.
-- A row already held or answered changes nothing, and a conflict already listed for the row's place (a token
-- conflict sent anyway at admission) is not counted again: the same call made twice (a worker killed after it)
-- counts the row once. A row the table lacks (a failover lost its admission, not its job) is counted read and held.
-- Returns 1 when recorded, 0 when the row was held or answered already (held: it is not to be posted).
local ROWS_READ = 'rows_read' -- META.rowsRead
local ROWS_QUEUED = 'rows_queued' -- META.rowsQueued
local ROWS_CONFLICT = 'rows_conflict' -- META.rowsConflict
local ROWS_HELD = 'rows_held' -- META.rowsHeld
local QUEUED = 'q' -- RECORD.queued
local HELD = 'h' -- RECORD.held
local CONFLICT_FORMAT = 1 -- FORMAT.conflict
local SENT = 's' -- a conflict's first byte: held (HELD) or sent anyway

--- @include "record"
--- @include "table"
--- @include "queuedBecomes"

local key, place, user, hold, other = ARGV[2], ARGV[3], ARGV[4], ARGV[5] == '1', ARGV[6]
-- the scope, this row's key and user, the other side (as admit-4.lua writes a conflict)
local conflict = string.sub(other, 1, 1) .. string.char(#key) .. key .. user .. string.sub(other, 2)

if not hold then
  if redis.call('HSETNX', KEYS[3], place, SENT .. string.char(CONFLICT_FORMAT) .. conflict) == 0 then return 0 end
  redis.call('HINCRBY', KEYS[1], ROWS_CONFLICT, 1)
  return 1
end

local run = tbl_open(KEYS[1], ARGV[1], KEYS[2])
if not queuedBecomes(run, KEYS[1], key, HELD, place, user) then return 0 end
tbl_close(run)
redis.call('HINCRBY', KEYS[1], ROWS_HELD, 1)
-- a conflict sent anyway at admission (its token) is now held, for its purchase: listed as such, counted once
if redis.call('HSET', KEYS[3], place, HELD .. string.char(CONFLICT_FORMAT) .. conflict) == 1 then
  redis.call('HINCRBY', KEYS[1], ROWS_CONFLICT, 1)
end
return 1
