-- Launch a due campaign run, at most once whatever the number of beats ticking.
-- ARGV[5] = campaign id, ARGV[6] = the due time the caller saw (ms), ARGV[7] = the run
-- after this one (ms, 0 = none). Returns the run number, or 0 when not launched (not
-- due, not scheduled, or another tick launched it first).
local id, expected = ARGV[5], tonumber(ARGV[6])
local k = K.campaign(id)
local f = redis.call('HMGET', k, 'state', 'next_run', 'run')
if f[1] ~= 'scheduled' or tonumber(f[2] or -1) ~= expected or expected > NOW then
  return 0
end
local run = tonumber(f[3] or 0) + 1
redis.call('HSET', k, 'state', 'running', 'run', run, 'cursor', 0, 'next_run', ARGV[7],
  'started', NOW, 'reason', '')
redis.call('ZREM', K.CAMPAIGNS_DUE, id)
redis.call('SADD', K.CAMPAIGNS_RUNNING, id)
redis.call('XADD', K.EVENTS, 'MAXLEN', '~', MAXLEN, '*', 'job', '', 'state',
  'campaign_started', 'camp', id, 'run', run, 'at', NOW)
return run
