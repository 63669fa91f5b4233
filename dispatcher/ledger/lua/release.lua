-- Give a claim back without spending an attempt: the limiter said "not now".
-- ARGV[5] = job id, ARGV[6] = attempt, ARGV[7] = next attempt (ms), ARGV[8] = reason,
-- ARGV[9] = the number's parked-jobs set to join ('' for none: a paused number's jobs
-- are made due again when it is resumed).
local id, att, next_at, reason, parked = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8], ARGV[9]
local k = K.job(id)
local f = redis.call('HMGET', k, 'state', 'att', 'from', 'lane', 'camp')
if f[1] ~= 'sending' or tonumber(f[2]) ~= att then return 0 end
set_state(id, 'retry_wait', {att = att - 1, next_at = next_at, wait_reason = reason})
redis.call('ZADD', K.TIMERS, next_at, id)
if parked ~= '' then redis.call('SADD', parked, id) end
event(id, 'retry_wait', f[3], {lane = f[4], camp = f[5], reason = reason})
return 1
