-- Admits rows an ingest read, all of one shard (ledger/admission.ts through ledger/scriptCalls.ts admitRows).
-- KEYS: the run shard's counters (and row table state), its wide records, its conflicts; the index shard's state.
-- ARGV: the run's bucket prefix, the index's bucket prefix, force ('1'/'0'), on conflict ('hold'/'send'), then
-- for each row: record key (token fingerprint), place, user (ledger/rowRecord.ts), user hash, payload hash, and
-- its purchase conflict: empty, or a scope byte and what names the other side: 'p' the place and user of another
-- user's row of this run holding one of its App Store purchases (ingest/receiptSurvey.ts), 'P' the purchase
-- index entry of an earlier run that migrated one for another user (ledger/purchaseIndex.ts), each followed by
-- the original transaction id: such a row is a conflict like a shared token.
-- Returns per row an answer code (ADMIT_ANSWER in ledger/scriptCalls.ts) and what follows it: 'n'<key> new (queue it), 'u'<key> updated (queue it: an earlier run migrated the token for
-- the same user with another payload), 'q'<key> this very row admitted before without an outcome (queue again:
-- its job id makes that a no-op), 'd' this row admitted before and finished, skipped or held, 'm' already
-- migrated (same token, user and payload in an earlier run: skipped unless forced), 'D'<place> duplicate of the
-- row of this run at that place (same token, same user), 'C'<key> conflict held (the token is another user's,
-- in this run or an earlier one: not sent, recorded in the conflicts hash), 'S'<key> conflict sent anyway.
-- A second user's row of a token gets the key <token fingerprint><variant byte>.
local ROWS_READ = 'rows_read' -- META.rowsRead
local ROWS_QUEUED = 'rows_queued' -- META.rowsQueued
local ROWS_ALREADY_MIGRATED = 'rows_already_migrated' -- META.rowsAlreadyMigrated
local ROWS_UPDATED = 'rows_updated' -- META.rowsUpdated
local ROWS_CONFLICT = 'rows_conflict' -- META.rowsConflict
local ROWS_HELD = 'rows_held' -- META.rowsHeld
local QUEUED = 'q' -- RECORD.queued
local SKIPPED = 'm' -- RECORD.skipped
local HELD = 'h' -- RECORD.held
local USER_HASH = 6 -- SHORT_HASH_BYTES
local HASHES = 12 -- INDEX_HASHES_BYTES
local INDEX_FORMAT = 1 -- FORMAT.index
local CONFLICT_FORMAT = 1 -- FORMAT.conflict
local MAX_VARIANT = 255
local SENT = 's' -- a conflict's first byte: held (HELD) or sent anyway
local NEW = 'n' -- ADMIT_ANSWER.new
local UPDATED = 'u' -- ADMIT_ANSWER.updated
local REQUEUE = 'q' -- ADMIT_ANSWER.requeue
local DONE = 'd' -- ADMIT_ANSWER.done
local MIGRATED = 'm' -- ADMIT_ANSWER.migrated
local DUPLICATE = 'D' -- ADMIT_ANSWER.duplicate
local CONFLICT_HELD = 'C' -- ADMIT_ANSWER.conflictHeld
local CONFLICT_SENT = 'S' -- ADMIT_ANSWER.conflictSent

--- @include "record"
--- @include "table"

local run = tbl_open(KEYS[1], ARGV[1], KEYS[2])
local index = tbl_open(KEYS[4], ARGV[2], false)
local force = ARGV[3] == '1'
local hold = ARGV[4] ~= 'send'
local n = { read = 0, queued = 0, migrated = 0, updated = 0, conflict = 0, held = 0 }
local out = {}

-- Records a conflict (keyed by the row's place, once) and the row: held, or queued to be sent anyway.
local function conflict(key, place, user, other)
  if not key then
    -- more users for one token than a variant byte can number: held, without a record of its own
    if redis.call('HSETNX', KEYS[3], place, HELD .. string.char(CONFLICT_FORMAT) .. other) == 0 then
      n.read = n.read - 1
      return DONE
    end
    n.conflict = n.conflict + 1
    n.held = n.held + 1
    return CONFLICT_HELD
  end
  n.conflict = n.conflict + 1
  if hold then
    redis.call('HSETNX', KEYS[3], place, HELD .. string.char(CONFLICT_FORMAT) .. other)
    tbl_put(run, key, rec_make(HELD, place, user), false)
    n.held = n.held + 1
    return CONFLICT_HELD .. key
  end
  redis.call('HSETNX', KEYS[3], place, SENT .. string.char(CONFLICT_FORMAT) .. other)
  tbl_put(run, key, rec_make(QUEUED, place, user), false)
  n.queued = n.queued + 1
  return CONFLICT_SENT .. key
end

for i = 5, #ARGV, 6 do
  local fp, place, user, userHash, payloadHash, purchase = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
  local answer
  local first -- this token's first row in this run, when it is another user's
  local key, variant = fp, 0
  -- This token's rows in this run, one per user: fp, then fp .. '\1', fp .. '\2', …
  while key do
    local rec = tbl_get(run, key)
    if not rec then break end
    local kind, recPlace, recUser = rec_head(rec)
    if recPlace == place then
      if kind == QUEUED then answer = REQUEUE .. key else answer = DONE end
      break
    end
    if recUser == user then
      answer = DUPLICATE .. recPlace
      break
    end
    first = first or { place = recPlace, user = recUser }
    variant = variant + 1
    if variant > MAX_VARIANT then key = false else key = fp .. string.char(variant) end
  end
  if not answer then
    n.read = n.read + 1
    if first then
      -- another user's row of this token in this run: 'r', this row's key and user, the other's place and user
      local own = key or fp
      answer = conflict(key, place, user, 'r' .. string.char(#own) .. own .. user .. first.place .. first.user)
    elseif purchase ~= '' then
      -- another user holds one of this row's purchases: the scope, this row's key and user, the other side, the
      -- shared original transaction id
      answer = conflict(key, place, user, string.sub(purchase, 1, 1) .. string.char(#key) .. key .. user .. string.sub(purchase, 2))
    else
      local earlier = tbl_get(index, fp)
      if earlier and string.byte(earlier, 1) ~= INDEX_FORMAT then
        return redis.error_reply('a cross-run index value of another format: an index written by another version of rc-migrate')
      end
      if not earlier then
        tbl_put(run, key, rec_make(QUEUED, place, user), false)
        n.queued = n.queued + 1
        answer = NEW .. key
      elseif string.sub(earlier, 2, USER_HASH + 1) ~= userHash then
        -- migrated for another user by an earlier run: 'x', this row's key and user, the index entry
        answer = conflict(key, place, user, 'x' .. string.char(#key) .. key .. user .. earlier)
      else
        local changed = string.sub(earlier, USER_HASH + 2, HASHES + 1) ~= payloadHash
        if not changed and not force then
          tbl_put(run, key, rec_make(SKIPPED, place, user), false)
          n.migrated = n.migrated + 1
          answer = MIGRATED
        else
          tbl_put(run, key, rec_make(QUEUED, place, user), false)
          n.queued = n.queued + 1
          if changed then
            n.updated = n.updated + 1
            answer = UPDATED .. key
          else
            answer = NEW .. key
          end
        end
      end
    end
  end
  out[#out + 1] = answer
end

tbl_close(run)
if n.read > 0 then redis.call('HINCRBY', KEYS[1], ROWS_READ, n.read) end
if n.queued > 0 then redis.call('HINCRBY', KEYS[1], ROWS_QUEUED, n.queued) end
if n.migrated > 0 then redis.call('HINCRBY', KEYS[1], ROWS_ALREADY_MIGRATED, n.migrated) end
if n.updated > 0 then redis.call('HINCRBY', KEYS[1], ROWS_UPDATED, n.updated) end
if n.conflict > 0 then redis.call('HINCRBY', KEYS[1], ROWS_CONFLICT, n.conflict) end
if n.held > 0 then redis.call('HINCRBY', KEYS[1], ROWS_HELD, n.held) end
return out
