-- Numbers a run's repeated strings (product and entitlement ids) in order of first use, so that records store
-- a small number instead (ledger/runLedger.ts codes). KEYS: the run's dictionary hash. ARGV: the strings.
-- Returns their numbers.
local out = {}
for i = 1, #ARGV do
  local code = redis.call('HGET', KEYS[1], ARGV[i])
  if not code then
    code = redis.call('HLEN', KEYS[1])
    redis.call('HSET', KEYS[1], ARGV[i], code)
  end
  out[i] = tonumber(code)
end
return out
