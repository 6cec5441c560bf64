-- Records App Store rows the ingest's survey superseded (a newer receipt of its user carries every purchase it
-- carries), each counted only the first time its place is seen: a resumed ingest, or a call sent twice, records and
-- counts a row once (ledger/admission.ts supersede, through ledger/scriptCalls.ts recordSuperseded). The rows of a
-- chunk that fall in one shard come in one call: a call per row cost the ingest more than reading their receipts.
-- KEYS: the superseded rows' table state, its wide records, the counters hash of the same shard.
-- ARGV: the table's bucket prefix, then per row its place (ledger/rowRecord.ts encodePlace) and its record
-- (encodeSuperseded).
-- Returns how many of the rows were new.
local ROWS_READ = 'rows_read' -- META.rowsRead
local ROWS_SUPERSEDED = 'rows_superseded' -- META.rowsSuperseded

--- @include "table"

local sup = tbl_open(KEYS[1], ARGV[1], KEYS[2], tbl_hash_sha1)
local added = 0
for i = 2, #ARGV - 1, 2 do
  if not tbl_get(sup, ARGV[i]) then
    tbl_put(sup, ARGV[i], ARGV[i + 1], false)
    added = added + 1
  end
end
tbl_close(sup)
if added > 0 then
  redis.call('HINCRBY', KEYS[3], ROWS_READ, added)
  redis.call('HINCRBY', KEYS[3], ROWS_SUPERSEDED, added)
end
return added
