-- The pacer's schedule and request log, one hash per rate scope (workers/pacer.ts, workers/rate/sharedRate.ts).
-- Every request takes the next free slot: one every <interval> ms on Redis's own clock, never before a hold
-- (the Retry-After of a 429). Every slot taken is counted in two rings of buckets (10 ms and 1 s) by the time it
-- is sent, and every 429 by the time its request was sent, so that the rate controller can count what the API
-- admitted in the second, or the minute, before any refused request: that count is the limit it learns.
-- A bucket is one field "<bucket number>,<sent>,<refused>"; a field holding an older bucket number is stale.
--
-- KEYS: the pace hash.
-- ARGV[1] = 'take': ARGV interval ms (may be fractional), max wait ms, ttl ms, lag ms (lateness the grid absorbs).
--   Returns {wait ms, or -1 when the schedule is booked further ahead than max wait; now; the slot (ms, a string)}.
-- ARGV[1] = 'confirm': ARGV the slot taken (ms). Returns {1, now} when the request may go at it; {0, now} when a
--   hold (a 429's wait) began after it was taken, and takes the slot out of the log.

-- ARGV[1] = 'observe': ARGV sent at (ms, 'now', or 0 = none), refused (1/0), hold ms, count from (ms), count from
--   for a minute (ms), ttl ms, edge ms (0 = none), window start (ms, 0 = not known). Records a 429 (and its hold)
--   when refused, then counts. With a window start, the hold ends there (never past hold ms); else, with an edge,
--   the hold is edge ms for the second's first refused request, doubling with each more (up to hold ms). With
--   either, the refusal opens a bracket (workers/rate/windowEdge.ts): when a request sent after the last refused one
--   was admitted, a window started between the two. Any observe call returns the open bracket once resolved.
--   Returns {now; sent in the last second; sent in the last minute; admitted from <from> to <sent at>, -1 when no
--   longer known; admitted from <from minute> to <sent at>, -1; the hold applied, ms; the bracket's start and end
--   (ms), -1 -1 when none}.
local key = KEYS[1]
local LAST_REFUSED = 'lref' -- PACE.lastRefused
local BRACKET_OPEN = 'lopen' -- PACE.bracketOpen
local SETTLE = 'lsettle' -- PACE.settle
-- A bracket wider than a second says nothing; the end of the bucket that admitted ends its bracket (the rate
-- controller widens it by a busy machine's lateness: workers/rate/windowEdge.ts).
local BRACKET_BUCKETS = 100
local SETTLE_MIN_MS = 100
local SETTLE_MAX_MS = 3000

--- @include "paceSchedule"

-- Sent and admitted (sent - refused) over the buckets holding [from, to]; nil when the ring no longer has
-- them. A ring holds `history` buckets before now; the rest is for slots booked ahead (up to the max wait).
local function sum(prefix, size, slots, history, from, to)
  local lo = math.floor(from / size)
  local hi = math.floor(to / size)
  if hi - lo >= slots or math.floor(now / size) - lo >= history then return nil, nil end
  local fields = {}
  for b = lo, hi do fields[#fields + 1] = prefix .. (b % slots) end
  local raw = redis.call('HMGET', key, unpack(fields))
  local sent, admitted = 0, 0
  for i = 1, #fields do
    local s, l = parse(raw[i], lo + i - 1)
    sent = sent + s
    admitted = admitted + s - l
  end
  return sent, admitted
end

if ARGV[1] == 'take' then
  return takeSlot(tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5] or '0'))
end

if ARGV[1] == 'confirm' then
  local slot = tonumber(ARGV[2])
  if tonumber(redis.call('HGET', key, HOLD) or '0') <= slot then return {1, now} end
  -- A hold began after this slot was taken: the request will not go; take it out of the log.
  bump(FINE, FINE_MS, FINE_SLOTS, slot, -1)
  bump(COARSE, COARSE_MS, COARSE_SLOTS, slot, -1)
  return {0, now}
end

-- The bracket the last refusal opened (see the header): the first bucket after it that admitted a request, once
-- every request sent up to there has its answer (a request's 429 comes within a few of its round trips: `settle`,
-- from the refused request's own), looking no further than a second. {from, to}, or {-1, -1} while unresolved or
-- when nothing was admitted within the second.
local function resolveBracket()
  if redis.call('HGET', key, BRACKET_OPEN) ~= '1' then return -1, -1 end
  local last = tonumber(redis.call('HGET', key, LAST_REFUSED) or '0')
  local settle = tonumber(redis.call('HGET', key, SETTLE) or tostring(SETTLE_MAX_MS))
  if now - last >= FINE_HISTORY * FINE_MS then
    redis.call('HSET', key, BRACKET_OPEN, '0')
    return -1, -1
  end
  local reach = last + BRACKET_BUCKETS * FINE_MS
  local horizon = math.min(reach, now - settle)
  local lo = math.floor(last / FINE_MS) + 1
  local hi = math.floor(horizon / FINE_MS) - 1
  if hi >= lo then
    local fields = {}
    for b = lo, hi do fields[#fields + 1] = FINE .. (b % FINE_SLOTS) end
    local raw = redis.call('HMGET', key, unpack(fields))
    for i = 1, #fields do
      local s, l = parse(raw[i], lo + i - 1)
      if s > l then
        redis.call('HSET', key, BRACKET_OPEN, '0')
        return last, (lo + i) * FINE_MS
      end
    end
  end
  if horizon >= reach then redis.call('HSET', key, BRACKET_OPEN, '0') end
  return -1, -1
end

if ARGV[1] == 'observe' then
  local at = ARGV[2] == 'now' and now or tonumber(ARGV[2])
  local holdMs = 0
  -- Before this call's own refusal (which opens the next bracket).
  local bracketFrom, bracketTo = resolveBracket()
  if ARGV[3] == '1' and at > 0 then
    bump(FINE, FINE_MS, FINE_SLOTS, at, 2)
    bump(COARSE, COARSE_MS, COARSE_SLOTS, at, 2)
    holdMs = tonumber(ARGV[4])
    local edge = tonumber(ARGV[8] or '0')
    local opens = tonumber(ARGV[9] or '0')
    if opens > 0 then
      -- The window opens again then: every request sent before it would be refused, none after it is.
      holdMs = math.min(holdMs, math.max(0, opens - now))
    elseif edge > 0 then
      -- A wait of "within a second" (Retry-After: 1): hold for a slot or two, then longer while the refusals of
      -- this second go on (the window is full for longer: others took it, or the limit fell), up to the wait.
      local sent, admitted = sum(FINE, FINE_MS, FINE_SLOTS, FINE_HISTORY, at - 999, now)
      local refused = math.max(1, (sent or 1) - (admitted or 0))
      holdMs = math.min(holdMs, edge * 2 ^ (refused - 1))
    end
    if opens > 0 or edge > 0 then
      -- The last refusal of a one-second window opens a bracket, resolved once its answers are in (resolveBracket).
      local last = tonumber(redis.call('HGET', key, LAST_REFUSED) or '0')
      if at >= last then
        local settle = math.min(SETTLE_MAX_MS, math.max(SETTLE_MIN_MS, 3 * (now - at)))
        redis.call('HSET', key, LAST_REFUSED, tostring(at), BRACKET_OPEN, '1', SETTLE, tostring(settle))
      end
    end
    if holdMs > 0 then
      local hold = math.max(tonumber(redis.call('HGET', key, HOLD) or '0'), now + holdMs)
      local nextSlot = math.max(tonumber(redis.call('HGET', key, NEXT) or '0'), hold)
      redis.call('HSET', key, HOLD, tostring(hold), NEXT, tostring(nextSlot))
    end
    touch(tonumber(ARGV[7]))
  end
  local sent1 = sum(FINE, FINE_MS, FINE_SLOTS, FINE_HISTORY, now - 999, now) or 0
  local sent60 = sum(COARSE, COARSE_MS, COARSE_SLOTS, COARSE_HISTORY, now - 59999, now) or 0
  local admitted1, admitted60 = -1, -1
  if at > 0 then
    local from = tonumber(ARGV[5])
    local _, a1 = sum(FINE, FINE_MS, FINE_SLOTS, FINE_HISTORY, from, at)
    if a1 == nil then _, a1 = sum(COARSE, COARSE_MS, COARSE_SLOTS, COARSE_HISTORY, from, at) end
    local _, a60 = sum(COARSE, COARSE_MS, COARSE_SLOTS, COARSE_HISTORY, tonumber(ARGV[6]), at)
    admitted1 = a1 or -1
    admitted60 = a60 or -1
  end
  return {now, sent1, sent60, admitted1, admitted60, math.floor(holdMs), bracketFrom, bracketTo}
end

return redis.error_reply('pace: unknown operation ' .. tostring(ARGV[1]))
