-- Weighs one checker report into a host's reputation (an exponentially
-- weighted share of delivered reports, placement::next_reputation); the
-- `rep` field outlives the host's leases (lose.lua keeps it).
-- KEYS: host hash
-- ARGV: delivered (0 or 1), weight, initial reputation
if redis.call('HEXISTS', KEYS[1], 'rep') == 0 and redis.call('HEXISTS', KEYS[1], 'reg') == 0 then
  return false -- never registered
end
local current = tonumber(redis.call('HGET', KEYS[1], 'rep') or ARGV[3])
if current ~= current or current < 0 then current = 0 end
if current > 1 then current = 1 end
local next = current + tonumber(ARGV[2]) * (tonumber(ARGV[1]) - current)
redis.call('HSET', KEYS[1], 'rep', tostring(next))
return tostring(next)
