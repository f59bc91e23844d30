-- Moves a session to a new state; ending frees its slot. Ended is final.
-- KEYS: host hash, live-session set, session hash
-- ARGV: session_id, new_state, only_if_state ('' for any), retention_s
local state = redis.call('HGET', KEYS[3], 'state')
if not state then
  return false
end
if state == 'ended' or (ARGV[3] ~= '' and state ~= ARGV[3]) then
  return state
end
if ARGV[2] == 'ended' then
  local used = 'used:' .. redis.call('HGET', KEYS[3], 'profile')
  if tonumber(redis.call('HGET', KEYS[1], used) or '0') > 0 then
    redis.call('HINCRBY', KEYS[1], used, -1)
  end
  redis.call('SREM', KEYS[2], ARGV[1])
  redis.call('EXPIRE', KEYS[3], tonumber(ARGV[4]))
end
redis.call('HSET', KEYS[3], 'state', ARGV[2])
return ARGV[2]
