-- The pump and the sweeper in one pass over due timers:
--   scheduled / retry_wait, due    -> queued, message published
--   queued for longer than stuck   -> message published again (the claim drops extras)
--   sending with an expired lease  -> ambiguous: per lane, resend (queued + published)
--                                     or hold as 'unknown'
--   unknown, no webhook came       -> it was not sent: queued + published
-- ARGV[5] = max jobs, ARGV[6] = stuck threshold (ms),
-- ARGV[7] = policy for transactional, ARGV[8] = policy for bulk, ARGV[9] = how long an
-- unknown job waits for its webhook (ms, 0 = no webhooks: it stays unknown).
-- Returns {published, republished, resent, held, dropped}.
local LIMIT, STUCK = tonumber(ARGV[5]), tonumber(ARGV[6])
local POLICY = {transactional = ARGV[7], bulk = ARGV[8]}
local RECHECK = tonumber(ARGV[9])
local due = redis.call('ZRANGEBYSCORE', P .. 'timers', '-inf', NOW, 'LIMIT', 0, LIMIT)
local published, republished, resent, held, dropped = 0, 0, 0, 0, 0
for _, id in ipairs(due) do
  local k = jkey(id)
  local f = redis.call('HMGET', k, 'state', 'queue', 'env', 'from', 'lane', 'camp')
  local state = f[1]
  if state == 'scheduled' or state == 'retry_wait' then
    set_state(id, 'queued')
    redis.call('ZADD', P .. 'timers', NOW + STUCK, id)
    publish_one(id, f[2], f[3])
    event(id, 'queued', f[4], {lane = f[5], camp = f[6]})
    published = published + 1
  elseif state == 'queued' then
    redis.call('ZADD', P .. 'timers', NOW + STUCK, id)
    publish_one(id, f[2], f[3])
    stat('republished')
    republished = republished + 1
  elseif state == 'sending' then
    stat('ambiguous')
    redis.call('HINCRBY', k, 'ambiguous', 1)
    if POLICY[f[5]] == 'resend' then
      set_state(id, 'queued', {err_msg = 'lease expired: sent again (ambiguous)'})
      redis.call('ZADD', P .. 'timers', NOW + STUCK, id)
      publish_one(id, f[2], f[3])
      event(id, 'queued', f[4], {lane = f[5], camp = f[6], ambiguous = 1})
      resent = resent + 1
    else
      set_state(id, 'unknown', {err_msg = 'lease expired mid-send: may or may not have been sent'})
      redis.call('ZREM', P .. 'timers', id)
      event(id, 'unknown', f[4], {lane = f[5], camp = f[6], ambiguous = 1})
      hold_unknown(id, RECHECK)
      held = held + 1
    end
  elseif state == 'unknown' and RECHECK > 0 then
    local to = redis.call('HGET', k, 'to')
    redis.call('DEL', P .. 'upair:' .. (f[4] or '') .. ':' .. (to or ''))
    set_state(id, 'queued', {err_msg = 'no webhook came for the ambiguous send: sent again'})
    redis.call('ZADD', P .. 'timers', NOW + STUCK, id)
    publish_one(id, f[2], f[3])
    event(id, 'queued', f[4], {lane = f[5], camp = f[6]})
    stat('unconfirmed_resent')
    resent = resent + 1
  else
    redis.call('ZREM', P .. 'timers', id)
    dropped = dropped + 1
  end
end
return {published, republished, resent, held, dropped}
