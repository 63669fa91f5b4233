-- Enqueue jobs: idempotency claim, ledger record, index, event, and the queue message,
-- all in one atomic step (a job is either queued with its message or not at all).
-- ARGV[5] = idempotency window (s), ARGV[6] = 'each' | 'batch' | 'none' (adopt: record
-- only, the message already exists), ARGV[7] = jobs per batch message (mode 'batch'),
-- ARGV[8] = JSON list of jobs, each a list of 14 values:
-- id, env, queue, channel, type, to, from, session, lane, idempotency key, campaign,
-- not before (ms, 0 = none), expires at (ms, 0 = none), campaign run ('' = none).
-- Returns one entry per job: the job id, or 'dup:<first job id>' for a repeated key.
local IDEM_S = tonumber(ARGV[5])
local MODE = ARGV[6]
local BATCH = tonumber(ARGV[7])
local EVENTS, TIMERS, RECENT = K.EVENTS, K.TIMERS, K.RECENT
local jobs = cjson.decode(ARGV[8])
local out, groups, order = {}, {}, {}
local counted = {}  -- metrics: new jobs per (number, lane, state), written once at the end
for i = 0, #jobs - 1 do
  local j = jobs[i + 1]
  local id, env, queue, ch, typ = j[1], j[2], j[3], j[4], j[5]
  local to, from, sess, lane = j[6], j[7], j[8], j[9]
  local idem, camp, nb, exp, crun = j[10], j[11], tonumber(j[12]), j[13], j[14]
  local dup = false
  if idem ~= '' then
    if not redis.call('SET', K.idempotency(idem), id, 'NX', 'EX', IDEM_S) then
      dup = redis.call('GET', K.idempotency(idem))
    end
  end
  if not dup and redis.call('EXISTS', K.job(id)) == 1 then dup = id end
  if dup then
    out[i + 1] = 'dup:' .. dup
  else
    local state = (nb > NOW) and 'scheduled' or 'queued'
    redis.call('HSET', K.job(id), 'state', state, 't_' .. state, NOW,
      'created', NOW, 'ch', ch, 'type', typ, 'to', to, 'from', from, 'sess', sess,
      'lane', lane, 'idem', idem, 'camp', camp, 'nb', nb, 'exp', exp, 'att', 0,
      'queue', queue, 'env', env, 'crun', crun)
    if camp ~= '' then redis.call('HINCRBY', funnel_key(camp, crun), state, 1) end
    local label = from .. '|' .. lane .. '|' .. state
    counted[label] = (counted[label] or 0) + 1
    if state == 'scheduled' then redis.call('ZADD', TIMERS, nb, id) end
    redis.call('ZADD', RECENT, NOW, id)
    if from ~= '' then redis.call('ZADD', K.recent_for_number(from), NOW, id) end
    redis.call('XADD', EVENTS, 'MAXLEN', '~', MAXLEN, '*', 'job', id, 'state', state,
      'number', from, 'at', NOW, 'lane', lane, 'camp', camp)
    if state == 'queued' then
      if MODE == 'each' then
        publish_one(id, queue)
      elseif MODE == 'batch' then
        local g = groups[queue]
        if not g then
          g = {ids = {}}
          groups[queue] = g
          table.insert(order, queue)
        end
        table.insert(g.ids, id)
        if #g.ids >= BATCH then
          publish_batch(g.ids, queue)
          g.ids = {}
        end
      end
    end
    out[i + 1] = id
  end
end
for _, queue in ipairs(order) do
  if #groups[queue].ids > 0 then publish_batch(groups[queue].ids, queue) end
end
for label, n in pairs(counted) do
  redis.call('HINCRBY', K.metric('jobs'), label, n)
  redis.call('HINCRBY', K.metric('now'), label, n)
end
return out
