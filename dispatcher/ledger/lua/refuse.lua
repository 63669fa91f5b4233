-- Record a job that cannot be sent at all (a campaign row refused at fan-out, when the
-- configuration changed after the campaign was checked): it ends 'failed' with the code
-- the caller gives (errors.py's RefusedAtFanOut: the gateway's "invalid parameter") and
-- the reason, so the funnel, the report and the job lookup all say why. Nothing is
-- published.
-- ARGV[5] = job id, ARGV[6] = to, ARGV[7] = from, ARGV[8] = lane, ARGV[9] = campaign,
-- ARGV[10] = campaign run, ARGV[11] = channel, ARGV[12] = type, ARGV[13] = reason,
-- ARGV[14] = the error code.
-- Returns 1 when recorded, 0 when the job exists already.
local id, to, from, lane, camp, crun = ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local k = K.job(id)
if redis.call('EXISTS', k) == 1 then return 0 end
redis.call('HSET', k, 'created', NOW, 'ch', ARGV[11], 'type', ARGV[12], 'to', to,
  'from', from, 'sess', '', 'lane', lane, 'idem', '', 'camp', camp, 'crun', crun, 'att', 0,
  'nb', 0, 'exp', 0, 'queue', '', 'env', '')
set_state(id, 'failed', {err_code = ARGV[14], err_msg = ARGV[13]})
redis.call('ZADD', K.RECENT, NOW, id)
if from ~= '' then redis.call('ZADD', K.recent_for_number(from), NOW, id) end
event(id, 'failed', from, {lane = lane, camp = camp, code = ARGV[14]})
return 1
