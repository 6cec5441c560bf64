-- Records an admitted row given by a transaction id as superseded after its lookup: its user's lookup group holds
-- a newer transaction of the same purchase, which is posted instead (ledger/admission.ts supersedeAdmitted through
-- ledger/scriptCalls.ts supersedeQueued). All keys are of the row's shard (by its record key).
-- KEYS: the run shard's counters (and row table state), its wide records, the superseded rows' table state, its
-- wide records.
-- ARGV: the run's bucket prefix, the superseded rows' bucket prefix, the record key, the row's place and user
-- (ledger/rowRecord.ts; the user is used only for a row the table lacks), its superseded record (encodeSuperseded:
-- the carrier's place).
-- A queued row's record becomes a superseded one and the row moves from rows_queued to rows_superseded, so that it
-- is no longer pending; a row the table does not have (a failover lost its admission, not its job) is counted read
-- and superseded, as admission would have. A row already superseded or answered changes nothing: the same call
-- made twice (a worker killed after it) counts the row once.
-- Returns 1 when recorded, 0 when the row was superseded or answered already.
local ROWS_READ = 'rows_read' -- META.rowsRead
local ROWS_QUEUED = 'rows_queued' -- META.rowsQueued
local ROWS_SUPERSEDED = 'rows_superseded' -- META.rowsSuperseded
local QUEUED = 'q' -- RECORD.queued
local SUPERSEDED = 'x' -- RECORD.superseded

--- @include "record"
--- @include "table"
--- @include "queuedBecomes"

local run = tbl_open(KEYS[1], ARGV[1], KEYS[2])
if not queuedBecomes(run, KEYS[1], ARGV[3], SUPERSEDED, ARGV[4], ARGV[5]) then return 0 end
tbl_close(run)
redis.call('HINCRBY', KEYS[1], ROWS_SUPERSEDED, 1)
local sup = tbl_open(KEYS[3], ARGV[2], KEYS[4], tbl_hash_sha1)
if not tbl_get(sup, ARGV[4]) then
  tbl_put(sup, ARGV[4], ARGV[6], false)
  tbl_close(sup)
end
return 1
