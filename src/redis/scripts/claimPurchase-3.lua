-- Checks, after its lookup, the App Store purchase of a row given by a transaction id against every other user
-- who holds it, and claims it for the row's user when none does (ledger/lookupConflicts.ts through
-- ledger/scriptCalls.ts claimPurchase). One purchase key, so all keys are of that key's shard: the cross-run
-- purchase index (earlier runs' successes and this run's, recordPurchases-2.lua) and this run's claims (rows given
-- by a transaction id that checked before this one). Check and claim are one step: of two users' rows checking one
-- purchase at once, exactly one claims it and the other finds it claimed.
-- KEYS: the purchase index's state, the run shard's claims state, its claims wide hash.
-- ARGV: the purchase index's bucket prefix, the claims' bucket prefix, the purchase key, the claim (the purchase
-- index's value form: format byte, user hash, run number, the row's record key).
-- Returns a code (CLAIM_ANSWER in ledger/scriptCalls.ts) and what follows it: 'n' claimed now (no other user holds
-- it), 'o' the row's own user claimed it already in this run, 'i'<entry> the purchase index gives it to
-- another user, 'c'<claim> another user's row of this run claimed it. A claim stays once made, whatever becomes of
-- its row: the first row of the run to check a purchase owns it, as the first row by place owns a receipt's.
local CLAIMED = 'n' -- CLAIM_ANSWER.claimed
local OWN = 'o' -- CLAIM_ANSWER.own
local INDEXED = 'i' -- CLAIM_ANSWER.indexed
local CLAIMED_BY_OTHER = 'c' -- CLAIM_ANSWER.claimedByOther
local USER_HASH = 6 -- SHORT_HASH_BYTES
local INDEX_FORMAT = 1 -- FORMAT.index

--- @include "table"

local index = tbl_open(KEYS[1], ARGV[1], false)
local claims = tbl_open(KEYS[2], ARGV[2], KEYS[3])
local key, claim = ARGV[3], ARGV[4]
local own = string.sub(claim, 2, USER_HASH + 1)

local function userOf(value, what)
  if string.byte(value, 1) ~= INDEX_FORMAT then
    error(what .. ' of another format: a ledger written by another version of rc-migrate')
  end
  return string.sub(value, 2, USER_HASH + 1)
end

local entry = tbl_get(index, key)
if entry and userOf(entry, 'a purchase index value') ~= own then return INDEXED .. entry end
local known = tbl_get(claims, key)
if known then
  if userOf(known, 'a purchase claim') ~= own then return CLAIMED_BY_OTHER .. known end
  return OWN
end
tbl_put(claims, key, claim, false)
tbl_close(claims)
return CLAIMED
