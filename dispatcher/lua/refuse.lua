-- Record a job that cannot be sent at all (a campaign row refused at fan-out, when the
-- configuration changed after the campaign was checked): it ends 'failed' with code 100
-- (the gateway's "invalid parameter") and the reason, so the funnel, the report and the
-- job lookup all say why. Nothing is published.
-- ARGV[4] = job id, ARGV[5] = to, ARGV[6] = from, ARGV[7] = lane, ARGV[8] = campaign,
-- ARGV[9] = campaign run, ARGV[10] = channel, ARGV[11] = type, ARGV[12] = reason,
-- ARGV[13] = retention (s). Returns 1 when recorded, 0 when the job exists already.
local id, to, from, lane, camp, crun = ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local k = jkey(id)
if redis.call('EXISTS', k) == 1 then return 0 end
redis.call('HSET', k, 'id', id, 'created', NOW, 'ch', ARGV[10], 'type', ARGV[11], 'to', to,
  'from', from, 'sess', '', 'lane', lane, 'idem', '', 'camp', camp, 'crun', crun, 'att', 0,
  'nb', 0, 'exp', 0, 'queue', '', 'env', '')
set_state(id, 'failed', {err_code = 100, err_msg = ARGV[12]})
redis.call('EXPIRE', k, tonumber(ARGV[13]))
redis.call('ZADD', P .. 'recent', NOW, id)
if from ~= '' then redis.call('ZADD', P .. 'recent:' .. from, NOW, id) end
event(id, 'failed', from, {lane = lane, camp = camp, code = 100})
return 1
