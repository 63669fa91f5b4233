-- Enqueue jobs: idempotency claim, ledger record, index, event, and the queue message,
-- all in one atomic step (a job is either queued with its message or not at all).
-- ARGV[4] = idempotency window (s), ARGV[5] = 'each' | 'batch' | 'none' (adopt: record
-- only, the message already exists), ARGV[6] = stuck threshold (ms), ARGV[7] = JSON list
-- of jobs {id, env, queue, ch, type, to, from, sess, lane, idem, camp, nb, exp},
-- ARGV[8] = jobs per batch message (mode 'batch').
-- Returns one entry per job: the job id, or 'dup:<first job id>' for a repeated key.
local IDEM_S = tonumber(ARGV[4])
local MODE = ARGV[5]
local STUCK = tonumber(ARGV[6])
local jobs = cjson.decode(ARGV[7])
local BATCH = tonumber(ARGV[8])
local out, groups, order = {}, {}, {}
for i, j in ipairs(jobs) do
  local dup = false
  if j.idem and j.idem ~= '' then
    local ok = redis.call('SET', P .. 'idem:' .. j.idem, j.id, 'NX', 'EX', IDEM_S)
    if not ok then
      dup = redis.call('GET', P .. 'idem:' .. j.idem)
    end
  end
  if not dup and redis.call('EXISTS', jkey(j.id)) == 1 then dup = j.id end
  if dup then
    out[i] = 'dup:' .. dup
  else
    local nb = tonumber(j.nb) or 0
    local state = (nb > NOW) and 'scheduled' or 'queued'
    redis.call('HSET', jkey(j.id), 'id', j.id, 'state', state, 't_' .. state, NOW,
      'created', NOW, 'ch', j.ch, 'type', j.type, 'to', j.to, 'from', j.from or '',
      'sess', j.sess or '', 'lane', j.lane, 'idem', j.idem or '', 'camp', j.camp or '',
      'nb', nb, 'exp', tonumber(j.exp) or 0, 'att', 0, 'queue', j.queue, 'env', j.env)
    redis.call('ZADD', P .. 'timers', (state == 'scheduled') and nb or (NOW + STUCK), j.id)
    redis.call('ZADD', P .. 'recent', NOW, j.id)
    if j.from and j.from ~= '' then redis.call('ZADD', P .. 'recent:' .. j.from, NOW, j.id) end
    event(j.id, state, j.from, {lane = j.lane, camp = j.camp})
    if state == 'queued' then
      if MODE == 'each' then
        publish_one(j.id, j.queue, j.env)
      elseif MODE == 'batch' then
        if not groups[j.queue] then groups[j.queue] = {ids = {}, envs = {}}; table.insert(order, j.queue) end
        local g = groups[j.queue]
        table.insert(g.ids, j.id)
        table.insert(g.envs, j.env)
        if #g.ids >= BATCH then
          publish_batch(g.ids, j.queue, g.envs)
          g.ids, g.envs = {}, {}
        end
      end
    end
    out[i] = j.id
  end
end
for _, queue in ipairs(order) do
  if #groups[queue].ids > 0 then publish_batch(groups[queue].ids, queue, groups[queue].envs) end
end
return out
