-- Enqueue jobs: idempotency claim, ledger record, index, event, and the queue message,
-- all in one atomic step (a job is either queued with its message or not at all).
-- ARGV[4] = idempotency window (s), ARGV[5] = 'each' | 'batch' | 'none' (adopt: record
-- only, the message already exists), ARGV[6] = stuck threshold (ms), ARGV[7] = jobs per
-- batch message (mode 'batch'), then 13 values per job, flat (no JSON to decode):
-- id, env, queue, channel, type, to, from, session, lane, idempotency key, campaign,
-- not before (ms, 0 = none), expires at (ms, 0 = none).
-- Returns one entry per job: the job id, or 'dup:<first job id>' for a repeated key.
local IDEM_S = tonumber(ARGV[4])
local MODE = ARGV[5]
local STUCK = tonumber(ARGV[6])
local BATCH = tonumber(ARGV[7])
local FIRST, WIDTH = 8, 13
local EVENTS, TIMERS, RECENT = P .. 'events', P .. 'timers', P .. 'recent'
local out, groups, order = {}, {}, {}
local n = (#ARGV - FIRST + 1) / WIDTH
for i = 0, n - 1 do
  local b = FIRST + i * WIDTH
  local id, env, queue, ch, typ = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4]
  local to, from, sess, lane = ARGV[b + 5], ARGV[b + 6], ARGV[b + 7], ARGV[b + 8]
  local idem, camp, nb, exp = ARGV[b + 9], ARGV[b + 10], tonumber(ARGV[b + 11]), ARGV[b + 12]
  local dup = false
  if idem ~= '' then
    if not redis.call('SET', P .. 'idem:' .. idem, id, 'NX', 'EX', IDEM_S) then
      dup = redis.call('GET', P .. 'idem:' .. idem)
    end
  end
  if not dup and redis.call('EXISTS', P .. 'job:' .. id) == 1 then dup = id end
  if dup then
    out[i + 1] = 'dup:' .. dup
  else
    local state = (nb > NOW) and 'scheduled' or 'queued'
    redis.call('HSET', P .. 'job:' .. id, 'id', id, 'state', state, 't_' .. state, NOW,
      'created', NOW, 'ch', ch, 'type', typ, 'to', to, 'from', from, 'sess', sess,
      'lane', lane, 'idem', idem, 'camp', camp, 'nb', nb, 'exp', exp, 'att', 0,
      'queue', queue, 'env', env)
    redis.call('ZADD', TIMERS, (state == 'scheduled') and nb or (NOW + STUCK), id)
    redis.call('ZADD', RECENT, NOW, id)
    if from ~= '' then redis.call('ZADD', RECENT .. ':' .. from, NOW, id) end
    redis.call('XADD', EVENTS, 'MAXLEN', '~', MAXLEN, '*', 'job', id, 'state', state,
      'number', from, 'at', NOW, 'lane', lane, 'camp', camp)
    if state == 'queued' then
      if MODE == 'each' then
        publish_one(id, queue, env)
      elseif MODE == 'batch' then
        local g = groups[queue]
        if not g then
          g = {ids = {}, envs = {}}
          groups[queue] = g
          table.insert(order, queue)
        end
        table.insert(g.ids, id)
        table.insert(g.envs, env)
        if #g.ids >= BATCH then
          publish_batch(g.ids, queue, g.envs)
          g.ids, g.envs = {}, {}
        end
      end
    end
    out[i + 1] = id
  end
end
for _, queue in ipairs(order) do
  if #groups[queue].ids > 0 then publish_batch(groups[queue].ids, queue, groups[queue].envs) end
end
return out
