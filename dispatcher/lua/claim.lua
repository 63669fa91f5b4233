-- Claim a job for one attempt: queued|retry_wait -> sending, with a lease.
-- ARGV[4] = job id, ARGV[5] = lease (ms), ARGV[6] = max attempts.
-- Returns {1, attempt, env, window, suppressed} when this caller may send, or
-- {0, reason}: the job's state (a duplicate delivery), 'missing', 'early' (retry not yet
-- due), 'scheduled'. ``window`` is what the webhooks told us of the recipient's
-- customer-service window: 'open', 'closed' or 'unknown'; ``suppressed`` is the reason
-- the recipient is on the suppression list, or ''.
local id = ARGV[4]
local LEASE = tonumber(ARGV[5])
local MAX_ATT = tonumber(ARGV[6])
local k = jkey(id)
local f = redis.call('HMGET', k, 'state', 'att', 'exp', 'nb', 'next_at', 'env', 'from', 'lane',
  'to', 'camp')
local state = f[1]
if not state then return {0, 'missing'} end
if state ~= 'queued' and state ~= 'retry_wait' then return {0, state} end
if state == 'retry_wait' and tonumber(f[5] or 0) > NOW then return {0, 'early'} end
if tonumber(f[4] or 0) > NOW then return {0, 'scheduled'} end
if tonumber(f[3] or 0) > 0 and tonumber(f[3]) <= NOW then
  set_state(id, 'expired')
  redis.call('ZREM', P .. 'timers', id)
  event(id, 'expired', f[7])
  return {0, 'expired'}
end
if f[10] and f[10] ~= '' then
  -- A campaign's jobs obey it even when already queued: cancelled ones are cancelled,
  -- paused ones are held (not an attempt) until the campaign resumes.
  local camp_state = redis.call('HGET', P .. 'camp:' .. f[10], 'state')
  if camp_state == 'cancelled' then
    set_state(id, 'cancelled')
    redis.call('ZREM', P .. 'timers', id)
    event(id, 'cancelled', f[7], {camp = f[10]})
    return {0, 'cancelled'}
  elseif camp_state == 'paused' then
    set_state(id, 'retry_wait', {next_at = NOW + 3600000, wait_reason = 'campaign paused'})
    redis.call('ZADD', P .. 'timers', NOW + 3600000, id)
    redis.call('SADD', P .. 'camp:' .. f[10] .. ':held', id)
    return {0, 'held'}
  end
end
local att = tonumber(f[2] or 0) + 1
if att > MAX_ATT then
  set_state(id, 'dead', {err_msg = 'attempts exhausted (' .. MAX_ATT .. ')'})
  redis.call('ZREM', P .. 'timers', id)
  event(id, 'dead', f[7])
  return {0, 'dead'}
end
set_state(id, 'sending', {att = att, lease = NOW + LEASE})
redis.call('ZADD', P .. 'timers', NOW + LEASE, id)
event(id, 'sending', f[7], {attempt = att})
local pair = (f[7] or '') .. ':' .. f[9]
local window = 'unknown'
if redis.call('EXISTS', P .. 'win:' .. pair) == 1 then
  window = 'open'
elseif redis.call('EXISTS', P .. 'closed:' .. pair) == 1 or
    redis.call('EXISTS', P .. 'seen:' .. pair) == 1 then
  window = 'closed'
end
local suppressed = redis.call('HGET', P .. 'suppressed', f[9]) or ''
return {1, att, f[6], window, suppressed}
