-- Records an App Store row the ingest's survey superseded (a newer receipt of its user carries every purchase it
-- carries), counting it only the first time its place is seen: a resumed ingest, or a call sent twice, records and
-- counts it once (ledger/admission.ts supersede, through ledger/scriptCalls.ts recordSuperseded).
-- KEYS: the superseded rows' table state, its wide records, the counters hash of the same shard.
-- ARGV: the table's bucket prefix, the row's place (ledger/rowRecord.ts encodePlace), its record (encodeSuperseded).
-- Returns 1 when the row was new, 0 when it was already recorded.
local ROWS_READ = 'rows_read' -- META.rowsRead
local ROWS_SUPERSEDED = 'rows_superseded' -- META.rowsSuperseded

--- @include "table"

local sup = tbl_open(KEYS[1], ARGV[1], KEYS[2], tbl_hash_sha1)
if tbl_get(sup, ARGV[2]) then return 0 end
tbl_put(sup, ARGV[2], ARGV[3], false)
tbl_close(sup)
redis.call('HINCRBY', KEYS[3], ROWS_READ, 1)
redis.call('HINCRBY', KEYS[3], ROWS_SUPERSEDED, 1)
return 1
