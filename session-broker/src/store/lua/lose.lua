-- Ends every session of a lost host and deletes the host (but for its reputation).
-- KEYS: host hash, live-session set, then the hash of every live session
-- ARGV: retention_s
if redis.call('SCARD', KEYS[2]) ~= #KEYS - 2 then
  return 0 -- the live set changed since it was read: read again
end
for i = 3, #KEYS do
  redis.call('HSET', KEYS[i], 'state', 'ended')
  redis.call('EXPIRE', KEYS[i], tonumber(ARGV[1]))
end
-- The host goes; what checkers found of it stays.
local rep = redis.call('HGET', KEYS[1], 'rep')
redis.call('DEL', KEYS[1], KEYS[2])
if rep then
  redis.call('HSET', KEYS[1], 'rep', rep)
end
return 1
