-- Every write to a lookup group (ledger/lookupGroups.ts): the rows given by a transaction id of one user in one
-- run, whose lookups are compared so that one purchase gets one POST. The ingest creates a group (its size, from
-- its survey) and marks the rows it does not queue as absent; each queued row stores what its lookup found, waits
-- until every row has a result, decides, and marks itself decided; the last mark deletes the group.
-- KEYS: the group hash (RedisKeys.lookupGroup).
-- ARGV: size (the ingest's; '' from a worker, which never creates a group), a row's place ('' for none), its
-- result ('' for none: a decided mark alone), keep ('1': a result already there stays: an ingest's absent mark or
-- a failure never replaces a lookup's result), decided ('1': the row waits no more), the group's ttl in seconds.
-- Returns -1 when there is no group (a worker's call: nothing is written), -2 when every row has decided (the
-- group is deleted), 0 while some row has no result yet, else {1 if this call gave the last result (the caller
-- wakes the rows waiting) or 0, then place, result, place, result, … of every row}.
local SIZE = '#n' -- LOOKUP_GROUP.size
local RESULTS = '#r' -- LOOKUP_GROUP.results
local DECIDED = '#d' -- LOOKUP_GROUP.decided
local RESULT = 'r:' -- LOOKUP_GROUP.result
local DECIDED_MARK = 'd:' -- LOOKUP_GROUP.decidedMark

local key = KEYS[1]
local size, place, value, keep, decided, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1', ARGV[5] == '1', ARGV[6]
if size ~= '' then redis.call('HSETNX', key, SIZE, size) end
local n = tonumber(redis.call('HGET', key, SIZE))
if not n then return -1 end
local added = false
if place ~= '' then
  if value ~= '' then
    local new
    if keep then new = redis.call('HSETNX', key, RESULT .. place, value) else new = redis.call('HSET', key, RESULT .. place, value) end
    if new == 1 then
      redis.call('HINCRBY', key, RESULTS, 1)
      added = true
    end
  end
  if decided and redis.call('HSETNX', key, DECIDED_MARK .. place, '1') == 1 then redis.call('HINCRBY', key, DECIDED, 1) end
end
if (tonumber(redis.call('HGET', key, DECIDED)) or 0) >= n then
  redis.call('DEL', key)
  return -2
end
redis.call('EXPIRE', key, ttl)
local results = tonumber(redis.call('HGET', key, RESULTS)) or 0
if results < n then return 0 end
local out = { 0 }
if added and results == n then out[1] = 1 end
local all = redis.call('HGETALL', key)
for i = 1, #all, 2 do
  if string.sub(all[i], 1, #RESULT) == RESULT then
    out[#out + 1] = string.sub(all[i], #RESULT + 1)
    out[#out + 1] = all[i + 1]
  end
end
return out
