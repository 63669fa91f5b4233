-- Give back a claim whose answer the holder never read (Redis went away while claim.lua
-- or take.lua ran): the holder knows it sent nothing under it, so the job is due again
-- at once, no attempt spent, and is not taken for an ambiguous send later.
-- ARGV[5] = the holder (a worker's identity), ARGV[6] = its token for that claim.
-- Returns 1 when the claim was there and is given back, 0 when it never happened or
-- has moved on.
local holder, token = ARGV[5], ARGV[6]
for _, id in ipairs(redis.call('SMEMBERS', K.held(holder))) do
  local f = redis.call('HMGET', K.job(id), 'state', 'ctok', 'att', 'from', 'lane', 'camp',
                       'holder')
  if f[1] == 'sending' and f[2] == token and f[7] == holder then
    set_state(id, 'retry_wait', {att = tonumber(f[3]) - 1, next_at = NOW,
      wait_reason = 'the claim was not answered: not sent, due again'})
    redis.call('ZADD', K.TIMERS, NOW, id)
    event(id, 'retry_wait', f[4], {lane = f[5], camp = f[6], reason = 'claim not answered'})
    return 1
  end
end
return 0
