-- A user's lock (workers/userLock.ts): taken when free, or taken over from an earlier attempt of the same row.
-- A lock's value is "<owner>#<random>", the owner being the row's job id. A row that finds its own id on the lock
-- is a row whose earlier attempt lost its job (its worker died or hung, and the stalled check handed the job on):
-- that attempt's request is over or will never be answered to anyone, and waiting out its expiry would only
-- send the row to the back of the queue (BullMQ puts delayed jobs behind every waiting one).
local function takeUserLock(key, token, ttlMs, owner)
  if redis.call('SET', key, token, 'PX', ttlMs, 'NX') then return true end
  if owner ~= '' then
    local held = redis.call('GET', key)
    if held and string.sub(held, 1, #owner + 1) == owner .. '#' then
      redis.call('SET', key, token, 'PX', ttlMs)
      return true
    end
  end
  return false
end
