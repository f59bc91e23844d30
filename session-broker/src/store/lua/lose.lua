-- Ends every session of a lost host and deletes the host.
-- KEYS: host hash, live-session set, then the hash of every live session
-- ARGV: retention_s
if redis.call('SCARD', KEYS[2]) ~= #KEYS - 2 then
  return 0 -- the live set changed since it was read: read again
end
for i = 3, #KEYS do
  redis.call('HSET', KEYS[i], 'state', 'ended')
  redis.call('EXPIRE', KEYS[i], tonumber(ARGV[1]))
end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
