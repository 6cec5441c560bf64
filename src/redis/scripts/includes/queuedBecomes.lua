-- A row admit queued becomes a finished row of another kind (superseded, held) without being sent: its record
-- keeps its head (format, place, user) under the new kind, and it leaves rows_queued. A row the run never read
-- (its ingest stopped first) gets a record of its own and counts as read. A row already of another kind
-- (answered, or changed by an earlier call) changes nothing: false. Needs the "record" and "table" includes and
-- the script's QUEUED, ROWS_QUEUED and ROWS_READ.
local function queuedBecomes(run, counters, key, kind, place, user)
  local prev = tbl_get(run, key)
  if prev then
    if string.sub(prev, 1, 1) ~= QUEUED then return false end
    tbl_put(run, key, kind .. string.sub(prev, 2), prev)
    redis.call('HINCRBY', counters, ROWS_QUEUED, -1)
  else
    tbl_put(run, key, rec_make(kind, place, user), false)
    redis.call('HINCRBY', counters, ROWS_READ, 1)
  end
  return true
end
