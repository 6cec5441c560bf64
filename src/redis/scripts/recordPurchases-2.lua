-- Writes entries of one shard of the cross-run purchase index (ledger/outcomes.ts recordPurchases, through
-- ledger/scriptCalls.ts): the App Store purchases (environment + original transaction id, hashed) of a row that
-- succeeded → who posted them last (format byte, user hash, run number, the row's record key). The last poster
-- wins, as RevenueCat's default restore behaviour moves a purchase to whoever posted it last.
-- KEYS: the purchase table's state, its wide records (never written: values are short). ARGV: bucket prefix,
-- value, then the purchase keys.

--- @include "table"

local t = tbl_open(KEYS[1], ARGV[1], KEYS[2])
for i = 3, #ARGV do
  local known = tbl_get(t, ARGV[i])
  if known ~= ARGV[2] then tbl_put(t, ARGV[i], ARGV[2], known) end
end
tbl_close(t)
return 0
