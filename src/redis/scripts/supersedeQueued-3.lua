-- Records an admitted row given by a transaction id as superseded after its lookup: its user's lookup group holds
-- a newer transaction of the same purchase, which is posted instead (ledger/admission.ts supersedeAdmitted through
-- ledger/scriptCalls.ts supersedeQueued). All keys are of the row's shard (by its record key).
-- KEYS: the run shard's counters (and row table state), its wide records, its superseded hash.
-- ARGV: the run's bucket prefix, the record key, the row's place and user (ledger/rowRecord.ts; used only for a row
-- the table lacks), the superseded hash's field (`<source number>:<line>`) and value (`<carrier source
-- number>:<carrier line>:<app user id>`).
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
if not queuedBecomes(run, KEYS[1], ARGV[2], SUPERSEDED, ARGV[3], ARGV[4]) then return 0 end
tbl_close(run)
redis.call('HINCRBY', KEYS[1], ROWS_SUPERSEDED, 1)
redis.call('HSETNX', KEYS[3], ARGV[5], ARGV[6])
return 1
