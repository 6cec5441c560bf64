-- Writes the shared rate of one limit scope (workers/rate/sharedRate.ts) only if nobody wrote it since it was
-- read: each process decides from what it read, and the version makes two processes that decided at the same
-- moment apply one decision, not both (the other reads again and decides anew).
-- KEYS: the rate hash. ARGV: the version read ('' when there was none), ttl ms, then field, value pairs.
-- Returns the new version, or 0 when the hash changed since it was read.
local VERSION = 'version' -- RATE.version

local key = KEYS[1]
local current = redis.call('HGET', key, VERSION)
if (current or '') ~= ARGV[1] then return 0 end
-- No version: absent, or left by an older version of the tool with other fields; start clean.
if not current then redis.call('DEL', key) end
local version = (tonumber(current) or 0) + 1
local pairs = { VERSION, tostring(version) }
for i = 3, #ARGV do pairs[#pairs + 1] = ARGV[i] end
redis.call('HSET', key, unpack(pairs))
redis.call('PEXPIRE', key, tonumber(ARGV[2]))
return version
