-- Record the outcome of an attempt; states only move forward.
-- ARGV[5] = job id, ARGV[6] = attempt, ARGV[7] = new state (sent | retry_wait | failed |
-- dead | unknown), ARGV[8] = JSON {wamid, err_status, err_code, err_msg, next_at,
-- ambiguous, and for a gateway call: scopes, taken, bucket_ms, buckets (the throttle's
-- counts) and refunds ([[limit key, interval ms], ...]: slots given back)},
-- ARGV[9] = how long an unknown job waits for its webhook (ms, 0 = no webhooks).
-- The attempt that holds the lease wins. A 'sent' from an attempt that lost its lease
-- is still recorded (the message did go out) unless the job has already moved past it.
-- Returns {1, state} when applied, {0, current state} when not.
local id, att, new = ARGV[5], tonumber(ARGV[6]), ARGV[7]
local fields = cjson.decode(ARGV[8])
if fields.scopes then
  -- A gateway call was made: counted for the adaptive throttle (see admit.lua) in each
  -- scope's bucket, R always and A when the gateway took it, whatever becomes of the
  -- outcome below. Counting R here, not at admission, keeps calls still in flight out
  -- of both (a slow gateway is not a failing one).
  local bucket = math.floor(NOW / fields.bucket_ms)
  for _, scope in ipairs(fields.scopes) do
    throttle_count(scope, bucket, fields.buckets, fields.bucket_ms, fields.taken == 1)
  end
end
for _, refund in ipairs(fields.refunds or {}) do
  -- A limit's slot given back (a call the gateway did not take): its TAT moves back one
  -- interval, never before now.
  local tat = tonumber(redis.call('GET', refund[1]) or '')
  if tat then
    redis.call('SET', refund[1], string.format('%.3f', math.max(NOW, tat - refund[2])),
               'KEEPTTL')
  end
end
local k = K.job(id)
local f = redis.call('HMGET', k, 'state', 'att', 'from', 'lane', 'camp', 'wamid')
local cur = f[1]
if not cur then return {0, 'missing'} end
local holder = (cur == 'sending' and tonumber(f[2]) == att)
local late_sent = (new == 'sent') and (cur == 'sending' or cur == 'retry_wait' or
  cur == 'queued' or cur == 'unknown')
if not (holder or late_sent) then
  if new == 'sent' and fields.wamid and not f[6] then
    redis.call('HSET', k, 'wamid', fields.wamid)
    redis.call('SET', K.wamid(fields.wamid), id, 'EX', RETENTION_S)
  end
  return {0, cur}
end
if late_sent and not holder then stat('late_sent') end
local extra = {}
for _, name in ipairs({'wamid', 'err_status', 'err_code', 'err_msg', 'next_at', 'fallback',
                       'gw_ms'}) do
  if fields[name] ~= nil and fields[name] ~= cjson.null then extra[name] = fields[name] end
end
set_state(id, new, extra)
if fields.ambiguous then
  redis.call('HINCRBY', k, 'ambiguous', 1)
  stat('ambiguous')
end
if fields.wamid then redis.call('SET', K.wamid(fields.wamid), id, 'EX', RETENTION_S) end
if new == 'retry_wait' then
  redis.call('ZADD', K.TIMERS, tonumber(fields.timer_at or fields.next_at), id)
else
  redis.call('ZREM', K.TIMERS, id)
end
if new == 'unknown' then hold_unknown(id, tonumber(ARGV[9])) end
event(id, new, f[3], {lane = f[4], camp = f[5], wamid = fields.wamid,
  code = fields.err_code, status = fields.err_status})
if fields.wamid then drain_orphans(id, fields.wamid) end  -- statuses that came first
return {1, redis.call('HGET', k, 'state')}
