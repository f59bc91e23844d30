-- Takes one slot of a profile on a live host for a new session, atomically.
-- KEYS: host hash, live-session set, session hash
-- ARGV: now_ms, lease_ms, session_id, profile, record_json
-- Answers the profile's used slots after the claim (at least 1), or
-- 0 when the profile is full, -1 when the host is lost or unknown,
-- -2 when the session already exists.
local now = tonumber(ARGV[1])
local seen = redis.call('HGET', KEYS[1], 'seen')
if not seen or now - tonumber(seen) >= tonumber(ARGV[2]) then
  return -1
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  return -2
end
local cap = tonumber(redis.call('HGET', KEYS[1], 'cap:' .. ARGV[4]) or '0')
local used = tonumber(redis.call('HGET', KEYS[1], 'used:' .. ARGV[4]) or '0')
if used >= cap then
  return 0
end
redis.call('HSET', KEYS[3], 'record', ARGV[5], 'state', 'allocated', 'profile', ARGV[4])
redis.call('SADD', KEYS[2], ARGV[3])
return redis.call('HINCRBY', KEYS[1], 'used:' .. ARGV[4], 1)
