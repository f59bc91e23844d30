-- Renews a live host's lease.
-- KEYS: host hash
-- ARGV: now_ms, lease_ms
local now = tonumber(ARGV[1])
local seen = redis.call('HGET', KEYS[1], 'seen')
if not seen or now - tonumber(seen) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('HSET', KEYS[1], 'seen', now)
return 1
