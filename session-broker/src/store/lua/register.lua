-- Registers or re-registers a host (bumping its `rev`, so replicas know to
-- re-read the registration); refuses while a lost incarnation still has live
-- sessions (the caller loses them first).
-- KEYS: host hash, live-session set
-- ARGV: now_ms, lease_ms, registration_json, then profile, capacity pairs
local now = tonumber(ARGV[1])
local seen = redis.call('HGET', KEYS[1], 'seen')
if seen and now - tonumber(seen) >= tonumber(ARGV[2]) and redis.call('SCARD', KEYS[2]) > 0 then
  return 0
end
local fields = redis.call('HKEYS', KEYS[1])
for _, f in ipairs(fields) do
  if string.sub(f, 1, 4) == 'cap:' then
    redis.call('HDEL', KEYS[1], f)
  end
end
redis.call('HSET', KEYS[1], 'reg', ARGV[3], 'seen', now)
redis.call('HINCRBY', KEYS[1], 'rev', 1)
for i = 4, #ARGV, 2 do
  redis.call('HSET', KEYS[1], 'cap:' .. ARGV[i], ARGV[i + 1])
end
return 1
