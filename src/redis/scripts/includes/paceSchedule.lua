-- The pacer's schedule (workers/pacer.ts): the next free slot, the hold of a 429, and the log of slots taken in two
-- rings of buckets (see pace-1.lua for the log's shape). Shared by pace-1.lua and lockPace-2.lua, which take a slot
-- the same way; the script that includes this sets `key` (the pace hash) first.
local NEXT = 'next' -- PACE.next
local HOLD = 'hold' -- PACE.hold
local FINE = 'f' -- PACE.fine
local COARSE = 'c' -- PACE.coarse
local FINE_MS = 10 -- PACE.fineMs
local FINE_SLOTS = 2000 -- PACE.fineSlots
local FINE_HISTORY = 1000 -- PACE.fineHistory
local COARSE_MS = 1000 -- PACE.coarseMs
local COARSE_SLOTS = 100 -- PACE.coarseSlots
local COARSE_HISTORY = 80 -- PACE.coarseHistory

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- A key left by an older version of the tool held the next slot as a plain string.
local first = redis.pcall('HGET', key, NEXT)
if type(first) == 'table' and first.err then redis.call('DEL', key) end

local function parse(raw, bucket)
  if not raw then return 0, 0 end
  local b, s, l = string.match(raw, '^(%-?%d+),(%d+),(%d+)$')
  if tonumber(b) ~= bucket then return 0, 0 end
  return tonumber(s), tonumber(l)
end

-- Adds one sent (column 1) or refused (column 2) request to the bucket holding ms; column -1 takes a sent one out.
local function bump(prefix, size, slots, ms, column)
  local bucket = math.floor(ms / size)
  local field = prefix .. (bucket % slots)
  local s, l = parse(redis.call('HGET', key, field), bucket)
  if column == 1 then s = s + 1 elseif column == -1 then s = math.max(0, s - 1) else l = l + 1 end
  redis.call('HSET', key, field, string.format('%d,%d,%d', bucket, s, l))
end

local function touch(ttl)
  redis.call('PEXPIRE', key, ttl)
end

-- Takes the next free slot: one every <interval> ms on Redis's own clock, never before a hold. The grid keeps its
-- phase through lateness of up to <lag> ms: a request that comes a little after its slot was due takes that slot
-- and goes at once, instead of moving every later slot by its lateness (which, request after request, would send
-- a few fewer than planned each second). After an idle spell at most lag / interval + 1 requests go at once.
-- Returns {wait ms, now, the slot (ms, a string)}, or {-1, now} when the schedule is booked further ahead than
-- <max wait> ms. The log counts the request when it leaves: the slot, or now when the slot was already due.
local function takeSlot(interval, maxWait, ttl, lag)
  local nextSlot = tonumber(redis.call('HGET', key, NEXT) or '0')
  local hold = tonumber(redis.call('HGET', key, HOLD) or '0')
  local slot = math.max(now - (lag or 0), nextSlot, hold)
  if slot - now > maxWait then return {-1, now} end
  redis.call('HSET', key, NEXT, tostring(slot + interval))
  local leaves = math.max(slot, now)
  bump(FINE, FINE_MS, FINE_SLOTS, leaves, 1)
  bump(COARSE, COARSE_MS, COARSE_SLOTS, leaves, 1)
  touch(ttl)
  return {math.ceil(leaves - now), now, tostring(leaves)}
end
