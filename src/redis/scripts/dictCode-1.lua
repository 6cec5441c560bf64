-- Numbers a run's repeated strings (product and entitlement ids, failure reasons and messages) in order of first
-- use, so that records store a small number instead (ledger/runNumbering.ts through ledger/scriptCalls.ts
-- dictionaryCodes). KEYS: the run's dictionary hash. ARGV: the most entries the dictionary may have for a new
-- string to get a number ('0': no limit), then the strings.
-- Returns their numbers; -1 for a string that is new while the dictionary is full (its record keeps it inline,
-- so that messages unique to their row cannot grow the dictionary without end).
local cap = tonumber(ARGV[1])
local out = {}
for i = 2, #ARGV do
  local code = redis.call('HGET', KEYS[1], ARGV[i])
  if not code then
    code = redis.call('HLEN', KEYS[1])
    if cap > 0 and code >= cap then
      code = -1
    else
      redis.call('HSET', KEYS[1], ARGV[i], code)
    end
  end
  out[#out + 1] = tonumber(code)
end
return out
