-- A table of records spread over small hashes ("buckets") that Redis keeps as listpacks, growing one bucket at a
-- time (linear hashing) so that no bucket outgrows a listpack however many records the table gets: the row table
-- of one shard of a run, or one shard of the cross-run index (ledger/rowTable.ts reads them the same way).
-- Why not a fixed number of buckets: a run's size is not known when it starts (an S3 prefix, a stream), and the
-- bytes do not allow one count for every size. A bucket's key costs about 150 bytes on its own (MEMORY USAGE of a
-- one-entry bucket: 152 B), a record in a full listpack about 45: a count sized for 50 million rows (~40,000
-- buckets a shard) leaves a 200,000-row run with one row a bucket, ~150 B a row for the buckets alone; a count
-- sized for small runs overflows the listpacks of a large one (a hashtable costs about twice a listpack a record).
-- Linear hashing keeps every run near 40 records a bucket (~2 B a row of bucket overhead) for the price of two
-- fields of state.
-- A table is a hash holding its growth state (the fields below), a bucket name prefix (bucket i is
-- `<prefix><i>`) and, for the row table, a `wide` hash for the few records longer than a listpack value, whose
-- bucket entry is then the stub WIDE. A record key is a token fingerprint (sha256 bytes, plus a variant byte):
-- its bytes 2-5 choose the bucket (byte 1 chose the shard). A table keyed otherwise (the superseded rows', by
-- place) passes tbl_hash_sha1 to tbl_open.
local TABLE_LEVEL = 'lh:level' -- TABLE.level
local TABLE_SPLIT = 'lh:split' -- TABLE.split
local TABLE_RECORDS = 'lh:n' -- TABLE.records
-- Records per bucket, on average, before the table grows by a bucket: the fullest buckets (not yet split this
-- round) then hold about twice that, 80, well under the 128 entries of Redis's default hash-max-listpack-entries.
local TABLE_LOAD = 40
local LISTPACK_VALUE_MAX = 64 -- LISTPACK_VALUE_MAX
local WIDE = '~'

local function tbl_hash(key)
  local b2, b3, b4, b5 = string.byte(key, 2, 5)
  return ((b2 * 256 + b3) * 256 + b4) * 256 + b5
end

-- The hash of a key that is not one already: a place (varint source number and line) is a few bytes whose low
-- bits follow the line, and a shard's places share their line modulo SHARDS, so their own bytes would fill a
-- sixteenth of the buckets. SHA-1's first 32 bits spread them evenly.
local function tbl_hash_sha1(key)
  return tonumber(string.sub(redis.sha1hex(key), 1, 8), 16)
end

-- `hash` (optional): the key's bucket hash, tbl_hash by default (a token fingerprint's bytes).
local function tbl_open(stateKey, bucketPrefix, wideKey, hash)
  local s = redis.call('HMGET', stateKey, TABLE_LEVEL, TABLE_SPLIT, TABLE_RECORDS)
  return {
    state = stateKey,
    prefix = bucketPrefix,
    wide = wideKey,
    hash = hash or tbl_hash,
    level = tonumber(s[1]) or 0,
    split = tonumber(s[2]) or 0,
    records = tonumber(s[3]) or 0,
    dirty = false,
  }
end

local function tbl_bucket(t, key)
  local h = t.hash(key)
  local m = 2 ^ t.level
  local b = h % m
  if b < t.split then b = h % (2 * m) end
  return t.prefix .. string.format('%d', b)
end

-- The record under `key`, or false.
local function tbl_get(t, key)
  local v = redis.call('HGET', tbl_bucket(t, key), key)
  if v == WIDE then return redis.call('HGET', t.wide, key) end
  return v
end

-- Splits the next bucket in turn into itself and a new one. Both are written afresh, so both are listpacks
-- again even if the old one had outgrown the limits meanwhile.
local function tbl_grow(t)
  local m = 2 ^ t.level
  local from = t.prefix .. string.format('%d', t.split)
  local all = redis.call('HGETALL', from)
  local stay, move = {}, {}
  for i = 1, #all, 2 do
    local dest = stay
    if t.hash(all[i]) % (2 * m) ~= t.split then dest = move end
    dest[#dest + 1] = all[i]
    dest[#dest + 1] = all[i + 1]
  end
  if #move > 0 then
    redis.call('DEL', from)
    if #stay > 0 then redis.call('HSET', from, unpack(stay)) end
    redis.call('HSET', t.prefix .. string.format('%d', t.split + m), unpack(move))
  end
  t.split = t.split + 1
  if t.split == m then
    t.level = t.level + 1
    t.split = 0
  end
end

-- Writes `value` under `key`; `known` is what tbl_get returned for the key (false: a new record).
local function tbl_put(t, key, value, known)
  local bucket = tbl_bucket(t, key)
  local wasWide = known and #known > LISTPACK_VALUE_MAX
  if #value > LISTPACK_VALUE_MAX then
    redis.call('HSET', t.wide, key, value)
    if not wasWide then redis.call('HSET', bucket, key, WIDE) end
  else
    redis.call('HSET', bucket, key, value)
    if wasWide then redis.call('HDEL', t.wide, key) end
  end
  if not known then
    t.records = t.records + 1
    t.dirty = true
    if t.records > TABLE_LOAD * (2 ^ t.level + t.split) then tbl_grow(t) end
  end
end

-- Saves the growth state (once per script call, after all its writes).
local function tbl_close(t)
  if t.dirty then redis.call('HSET', t.state, TABLE_LEVEL, t.level, TABLE_SPLIT, t.split, TABLE_RECORDS, t.records) end
end
