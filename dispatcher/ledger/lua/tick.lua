-- The pump in one pass over due timers:
--   scheduled / retry_wait, due    -> queued, message published
--   sending with an expired lease  -> ambiguous: per lane, resend (queued + published)
--                                     or hold as 'unknown' (a backstop: a dead worker's
--                                     claims are found sooner by recover.lua)
--   unknown, no webhook came       -> it was not sent: queued + published
-- Queued jobs have no timer: their messages are tracked (see prelude.lua, publication).
-- ARGV[5] = max jobs, ARGV[6] = policy for transactional, ARGV[7] = policy for bulk,
-- ARGV[8] = how long an unknown job waits for its webhook (ms, 0 = no webhooks: it
-- stays unknown).
-- Returns {published, resent, held, dropped}.
local LIMIT = tonumber(ARGV[5])
local POLICY = {transactional = ARGV[6], bulk = ARGV[7]}
local RECHECK = tonumber(ARGV[8])
local due = redis.call('ZRANGEBYSCORE', K.TIMERS, '-inf', NOW, 'LIMIT', 0, LIMIT)
local published, dropped = 0, 0
local lost = {resent = 0, held = 0, returned = 0}  -- claims lost: claim_lost's outcomes
for _, id in ipairs(due) do
  local k = K.job(id)
  local state, queue, from, lane, camp, to =
    unpack(redis.call('HMGET', k, 'state', 'queue', 'from', 'lane', 'camp', 'to'))
  if state == 'scheduled' or state == 'retry_wait' then
    set_state(id, 'queued')
    redis.call('ZREM', K.TIMERS, id)
    publish_one(id, queue, state == 'retry_wait')  -- a retry is next in line
    event(id, 'queued', from, {lane = lane, camp = camp})
    published = published + 1
  elseif state == 'sending' then
    local outcome = claim_lost(id, 'lease expired mid-send', POLICY, RECHECK)
    lost[outcome] = lost[outcome] + 1
  elseif state == 'unknown' and RECHECK > 0 then
    redis.call('DEL', K.unknown_pair((from or '') .. ':' .. (to or '')))
    set_state(id, 'queued', {err_msg = 'no webhook came for the ambiguous send: sent again'})
    redis.call('ZREM', K.TIMERS, id)
    publish_one(id, queue, true)
    event(id, 'queued', from, {lane = lane, camp = camp})
    stat('unconfirmed_resent')
    lost.resent = lost.resent + 1
  else
    redis.call('ZREM', K.TIMERS, id)
    dropped = dropped + 1
  end
end
-- A claim never admitted is published again like a due retry.
return {published + lost.returned, lost.resent, lost.held, dropped}
