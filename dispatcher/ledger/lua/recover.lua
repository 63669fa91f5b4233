-- Recovery by liveness, not by age (run by beat's tick every second):
--   1. a worker silent for DEAD_MS is dead: each job it held ('held:<worker>', claims
--      are made with the holder's name) is a claim lost mid-send and follows the lane's
--      ambiguity policy at once (claim_lost), instead of waiting for its lease;
--   2. a Celery message in kombu's 'unacked' hash that no live worker says it holds
--      ('holds:<worker>', written with every heartbeat) for DEAD_MS is returned to the
--      front of its queue, instead of waiting for kombu's visibility timeout;
--   3. (when SWEEP) a queued job whose message was taken from its queue but is held by
--      nobody (lost between kombu's BRPOP and its 'unacked' write, or with the reply of
--      a BRPOP when Redis died) is published again, once it has been seen so for DEAD_MS
--      (see prelude.lua, publication). Nothing else is ever published twice.
-- Judgements wait DEAD_MS after a gap in these runs (Redis or beat was down, so the
-- workers could not heartbeat either), giving every live worker time to be heard.
-- ARGV[5] = DEAD_MS, ARGV[6] = policy for transactional, ARGV[7] = policy for bulk,
-- ARGV[8] = how long an unknown job waits for its webhook (ms), ARGV[9] = kombu's
-- unacked hash, ARGV[10] = kombu's unacked index (zset, delivery time in s),
-- ARGV[11] = a gap between runs that counts as an outage (ms), ARGV[12] = most items per
-- step, ARGV[13] = '1' to sweep the queues' publication indexes.
-- Returns {dead workers, claims resent, claims held, messages restored, republished,
-- waiting (1 while judgements wait after a gap), claims returned (never admitted: not
-- sent, queued again without an attempt or ambiguity)}.
local DEAD_MS = tonumber(ARGV[5])
local POLICY = {transactional = ARGV[6], bulk = ARGV[7]}
local RECHECK = tonumber(ARGV[8])
local UNACKED, UNACKED_INDEX = ARGV[9], ARGV[10]
local GAP_MS, LIMIT, SWEEP = tonumber(ARGV[11]), tonumber(ARGV[12]), ARGV[13] == '1'
local WORKERS = K.WORKERS

local last = tonumber(redis.call('GET', K.RECOVERY_LAST) or '0')
redis.call('SET', K.RECOVERY_LAST, NOW)
if NOW - last > GAP_MS then redis.call('SET', K.RECOVERY_SINCE, NOW) end
local since = tonumber(redis.call('GET', K.RECOVERY_SINCE) or NOW)
if NOW - since < DEAD_MS then return {0, 0, 0, 0, 0, 1, 0} end

local silent_s = (NOW - DEAD_MS) / 1000  -- heartbeats are unix seconds
local dead_workers, restored, republished = 0, 0, 0
local lost = {resent = 0, held = 0, returned = 0}  -- claims lost: claim_lost's outcomes

-- 1. dead workers' claims
for _, worker in ipairs(redis.call('ZRANGEBYSCORE', WORKERS, '-inf', silent_s, 'LIMIT', 0, 10)) do
  local claims = 0
  for _, id in ipairs(redis.call('SMEMBERS', K.held(worker))) do
    local f = redis.call('HMGET', K.job(id), 'state', 'holder')
    if f[1] == 'sending' and f[2] == worker then
      claims = claims + 1
      local outcome = claim_lost(id, 'its worker died', POLICY, RECHECK)
      lost[outcome] = lost[outcome] + 1
    end
  end
  redis.call('DEL', K.held(worker), K.holds(worker))
  redis.call('ZREM', WORKERS, worker)
  redis.call('XADD', K.EVENTS, 'MAXLEN', '~', MAXLEN, '*', 'job', '', 'state',
    'worker_lost', 'worker', worker, 'claims', claims, 'at', NOW)
  stat('workers_lost')
  dead_workers = dead_workers + 1
end

-- 2. messages nobody holds
local live = redis.call('ZRANGEBYSCORE', WORKERS, '(' .. silent_s, '+inf')
local function held_by_a_live_worker(tag)
  for _, worker in ipairs(live) do
    if redis.call('SISMEMBER', K.holds(worker), tag) == 1 then return true end
  end
  return false
end
for _, tag in ipairs(redis.call('ZRANGEBYSCORE', UNACKED_INDEX, '-inf', silent_s,
                                'LIMIT', 0, LIMIT)) do
  if not held_by_a_live_worker(tag) then
    local raw = redis.call('HGET', UNACKED, tag)
    local ok, parts = pcall(cjson.decode, raw or 'null')
    local queue = ok and type(parts) == 'table' and parts[3]
    local exchange = ok and type(parts) == 'table' and parts[2]
    -- kombu stores json.dumps([message, exchange, routing_key]): the message text is
    -- put back byte for byte (a cjson round trip would turn [] into {}).
    local suffix = type(queue) == 'string' and
      (', ' .. cjson.encode(exchange) .. ', ' .. cjson.encode(queue) .. ']') or nil
    if not raw then
      redis.call('ZREM', UNACKED_INDEX, tag)
    elseif suffix and (exchange == '' or exchange == queue) and
        string.sub(raw, -#suffix) == suffix then
      redis.call('RPUSH', queue, string.sub(raw, 2, #raw - #suffix))
      mark_ready(queue)
      redis.call('HDEL', UNACKED, tag)
      redis.call('ZREM', UNACKED_INDEX, tag)
      stat('messages_restored')
      restored = restored + 1
    else
      stat('unrestorable')  -- left for kombu's own restore (its visibility timeout)
    end
  end
end

-- 3. queued jobs whose message was taken and is held by nobody
if SWEEP then
  for _, queue in ipairs(redis.call('SMEMBERS', K.QUEUES)) do
    local head = redis.call('LINDEX', queue, -1)
    local below = '+inf'  -- an empty queue: every message was taken
    if head then
      local ok, msg = pcall(cjson.decode, head)
      local n = ok and type(msg) == 'table' and type(msg.properties) == 'table' and
        tag_number(msg.properties.delivery_tag)
      below = n and ('(' .. n) or nil  -- a message not ours at the head: cannot judge
    end
    if below then
      local index = K.publications(queue)
      for _, id in ipairs(redis.call('ZRANGEBYSCORE', index, '-inf', below, 'LIMIT', 0, LIMIT)) do
        local k = K.job(id)
        local state, pub, ptag, lost_at, from, lane, camp = unpack(redis.call('HMGET', k,
          'state', 'pub', 'ptag', 'lost_at', 'from', 'lane', 'camp'))
        local tag = publication_tag(id, pub, ptag)
        if state ~= 'queued' then
          redis.call('ZREM', index, id)
        elseif tag and redis.call('HEXISTS', UNACKED, tag) == 1 then
          if lost_at then redis.call('HDEL', k, 'lost_at') end  -- a worker has it
        elseif not lost_at then
          redis.call('HSET', k, 'lost_at', NOW)
        elseif NOW - tonumber(lost_at) >= DEAD_MS then
          redis.call('HDEL', k, 'lost_at')
          publish_one(id, queue, true)
          event(id, 'queued', from, {lane = lane, camp = camp, republished = 1})
          stat('republished')
          republished = republished + 1
        end
      end
    end
  end
end
return {dead_workers, lost.resent, lost.held, restored, republished, 0, lost.returned}
