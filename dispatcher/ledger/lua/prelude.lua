-- Shared by every ledger script: the library's functions (dispatcher/ledger/scripts.py)
-- each call begin(ARGV) first. ARGV[1] = key prefix, ARGV[2] = now in ms, ARGV[3] =
-- events stream max length, ARGV[4] = retention (s): how long a settled job (and what
-- points at it) is kept. The library is loaded once and these locals live on between
-- calls, so begin sets them anew each call (the prefix's keys only when it changed).
-- Scripts touch keys they build from the prefix: this assumes one Redis, not a cluster.
local P, NOW, MAXLEN, RETENTION_S
local TERMINAL = {sent = true, delivered = true, read = true, failed = true, dead = true,
                  cancelled = true, expired = true, unknown = true, skipped = true}
local RANK = {sent = 1, delivered = 2, read = 3}

-- The key schema: every key a script touches is built here, from the prefix, the same way
-- dispatcher/ledger/schema.py builds it (that module documents each key; a test checks
-- that the two agree).
local K = {}
local function begin(args)
  NOW, MAXLEN, RETENTION_S = tonumber(args[2]), tonumber(args[3]), tonumber(args[4])
  if args[1] == P then return end
  P = args[1]
  K.EVENTS, K.TIMERS, K.RECENT = P .. 'events', P .. 'timers', P .. 'recent'
  K.STATS, K.WORKERS, K.DEAD = P .. 'stats', P .. 'workers', P .. 'dead'
  K.QUEUES, K.READY, K.SUPPRESSED = P .. 'queues', P .. 'ready', P .. 'suppressed'
  K.CAMPAIGNS_DUE, K.CAMPAIGNS_RUNNING = P .. 'campaigns:due', P .. 'campaigns:running'
  K.RECOVERY_LAST, K.RECOVERY_SINCE = P .. 'recovery:last', P .. 'recovery:since'
end
function K.job(id) return P .. 'job:' .. id end
function K.idempotency(key) return P .. 'idem:' .. key end
function K.wamid(wamid) return P .. 'wamid:' .. wamid end
function K.recent_for_number(number) return P .. 'recent:' .. number end
function K.publications(queue) return P .. 'pub:' .. queue end
function K.served(digest) return P .. 'serves:' .. digest end
function K.held(worker) return P .. 'held:' .. worker end
function K.holds(worker) return P .. 'holds:' .. worker end
function K.orphan(wamid) return P .. 'orphan:' .. wamid end
function K.orphan_pair(pair) return P .. 'opair:' .. pair end
function K.unknown_pair(pair) return P .. 'upair:' .. pair end
function K.window(pair) return P .. 'win:' .. pair end
function K.seen(pair) return P .. 'seen:' .. pair end
function K.closed(pair) return P .. 'closed:' .. pair end
function K.metric(name) return P .. 'm:' .. name end
function K.campaign(id, part)
  if part then return P .. 'camp:' .. id .. ':' .. part end
  return P .. 'camp:' .. id
end

local function event(id, state, number, extra)
  local args = {K.EVENTS, 'MAXLEN', '~', MAXLEN, '*', 'job', id, 'state', state,
                'number', number or '', 'at', NOW}
  if extra then
    for k, v in pairs(extra) do
      if v ~= nil and v ~= false and v ~= '' then
        table.insert(args, k); table.insert(args, tostring(v))
      end
    end
  end
  redis.call('XADD', unpack(args))
end

local function stat(name, n) redis.call('HINCRBY', K.STATS, name, n or 1) end

-- Publication is tracked: each message gets a number (its delivery tag is
-- '<task id>.<n>'), and each job it carries records n ('pub'; and the tag, 'ptag', when
-- the message is a batch's: a single job's tag is '<job id>.<n>', not kept twice) and
-- sits in the queue's publication index (zset 'pub:<queue>', score n) until it leaves
-- 'queued'. New work goes to the back of its queue (LPUSH) numbered from a rising
-- sequence; work that has waited already (a retry, a resend, a lost message) goes to
-- the front (RPUSH, where workers take from) numbered from a falling negative one. So
-- numbers rise from the front of every queue to its back, and a job whose n is below
-- the number of the message now at the front has had its message taken; if no worker
-- holds that message (kombu's 'unacked' hash) and the job is still queued, the message
-- was lost and recover.lua publishes it again. A backlog of any age is never published
-- twice.
-- The one place a Celery message is written: Celery's task protocol 2 (body [args,
-- kwargs, embed]; headers lang, task, id, retries) in kombu's Redis transport format (a
-- JSON object LPUSHed on the queue's list), the body as UTF-8 JSON text, not base64 (the
-- app's broker option body_encoding='utf-8'). Its delivery tag is '<task id>.<n>' (see
-- above). What kombu and Celery read as their defaults is left out, as every byte of a
-- message is kept for each queued job: the embed's callbacks, errbacks, chain and chord
-- (None), the priority (0) and the body encoding (none: the text as it is).
-- tests/test_ledger_schema.py checks that kombu decodes it into the same task call as
-- Celery's send_task publishes. Message format 2: a message carries only its
-- jobs' ids (waapi.send(job_id=...), waapi.send_batch(jobs=[id, ...])); the worker's
-- claim reads each envelope from the job's record, so it is kept once (format 1
-- carried it in the message too).
-- Workers read both formats; a change of format is a new MESSAGE_FORMAT, and workers
-- that read it are deployed before producers that write it.
local MESSAGE_FORMAT = 2
local function message(task, task_id, queue, kwargs_json, front)
  local n = redis.call('HINCRBY', K.STATS, 'published', 1)
  if front then n = -redis.call('HINCRBY', K.STATS, 'published_front', 1) end
  local tag = task_id .. '.' .. n
  return cjson.encode({
    body = '[[],' .. kwargs_json .. ',{}]',
    ['content-encoding'] = 'utf-8',
    ['content-type'] = 'application/json',
    -- (no argsrepr/kwargsrepr: Celery reads them as '', so events show no arguments)
    headers = {lang = 'py', task = task, id = task_id, retries = 0,
               waapi_format = MESSAGE_FORMAT},
    properties = {delivery_tag = tag, delivery_info = {exchange = '', routing_key = queue}},
  }), n, tag
end

-- ``tag``: a batch message's delivery tag, or nil for a single job's message;
-- ``again``: the job may have been published before (so perhaps in a batch).
local function track(id, queue, n, tag, again)
  if tag then
    redis.call('HSET', K.job(id), 'pub', n, 'ptag', tag)
  else
    redis.call('HSET', K.job(id), 'pub', n)
    if again then redis.call('HDEL', K.job(id), 'ptag') end
  end
  redis.call('ZADD', K.publications(queue), n, id)
end

-- The delivery tag of the message a job was last published in (see track), or nil.
local function publication_tag(id, pub, ptag)
  if ptag then return ptag end
  return pub and (id .. '.' .. pub) or nil
end

-- A transactional queue that now holds a message: a draining worker whose own queue is
-- empty may take it (take.lua). Queue names end with their lane ('.tx': job/queues.py).
local function mark_ready(queue)
  if string.sub(queue, -3) == '.tx' then redis.call('SADD', K.READY, queue) end
end

-- ``front``: the job has waited already (a retry, a resend): next in line.
local function publish_one(id, queue, front)
  local msg, n = message('waapi.send', id, queue, cjson.encode({job_id = id}), front)
  redis.call(front and 'RPUSH' or 'LPUSH', queue, msg)
  track(id, queue, n, nil, front)
  redis.call('SADD', K.QUEUES, queue)
  mark_ready(queue)
end

local function publish_batch(ids, queue)
  local body = cjson.encode({jobs = ids})
  local msg, n, tag = message('waapi.send_batch', ids[1] .. '+' .. #ids, queue, body)
  redis.call('LPUSH', queue, msg)
  for _, id in ipairs(ids) do track(id, queue, n, tag) end
  redis.call('SADD', K.QUEUES, queue)
end

-- The sequence number in one of our delivery tags ('<task id>.<n>'), or nil.
local function tag_number(tag)
  if type(tag) ~= 'string' then return nil end
  return tonumber(string.match(tag, '%.(%-?%d+)$'))
end

-- Metrics, kept beside the ledger in the same atomic step (telemetry/metrics.py reads
-- them): transitions per (number, lane, state); a gauge of unsettled jobs; failures by
-- Meta code (or HTTP status, or 'transport'); latency histograms in ms.
local INFLIGHT = {scheduled = true, queued = true, sending = true, retry_wait = true,
                  unknown = true}
local LATENCY_MS = {5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
                    300000, 3600000}

local function observe(key, ms)
  local le = '+Inf'
  for _, bound in ipairs(LATENCY_MS) do
    if ms <= bound then le = tostring(bound); break end
  end
  redis.call('HINCRBY', key, le, 1)
  redis.call('HINCRBY', key, 'sum', math.floor(ms + 0.5))
end

local function count_state(number, lane, before, state)
  local label = (number or '') .. '|' .. (lane or '')
  redis.call('HINCRBY', K.metric('jobs'), label .. '|' .. state, 1)
  if before and INFLIGHT[before] then
    redis.call('HINCRBY', K.metric('now'), label .. '|' .. before, -1)
  end
  if INFLIGHT[state] then redis.call('HINCRBY', K.metric('now'), label .. '|' .. state, 1) end
end

-- A campaign run's funnel: one counter per state, moved with every change of its jobs.
local function funnel_key(camp, run) return K.campaign(camp, 'f:' .. run) end

-- The attempts' history: each change that carries an error (or a note, like a
-- reconciled send) appends {at, state, attempt, status, code, message}; the newest
-- HISTORY_MAX are kept. The current error fields describe the last failed attempt only
-- while the job is not sent: reaching sent/delivered/read clears them.
local SENT_STATES = {sent = true, delivered = true, read = true}
local HISTORY_MAX = 25
local ERROR_FIELDS = {'err_status', 'err_code', 'err_msg'}

local function has_error(fields)
  for _, name in ipairs(ERROR_FIELDS) do
    local v = fields[name]
    if v ~= nil and v ~= '' and v ~= cjson.null then return true end
  end
  return false
end

local function append_history(id, state, attempt, fields)
  local raw = redis.call('HGET', K.job(id), 'hist')
  local hist = raw and cjson.decode(raw) or {}
  local item = {at = NOW, state = state, attempt = tonumber(attempt or 0) or 0}
  if fields.err_status and fields.err_status ~= '' then item.status = tonumber(fields.err_status) end
  if fields.err_code and fields.err_code ~= '' then item.code = tonumber(fields.err_code) end
  if fields.err_msg and fields.err_msg ~= '' then item.message = fields.err_msg end
  table.insert(hist, item)
  while #hist > HISTORY_MAX do table.remove(hist, 1) end
  redis.call('HSET', K.job(id), 'hist', cjson.encode(hist))
end

local function set_state(id, state, extra_fields)
  local before = redis.call('HMGET', K.job(id), 'state', 'camp', 'crun', 'from', 'lane',
                            'created', 'att', 'holder', 'queue')
  if before[1] == 'queued' and state ~= 'queued' and before[9] then
    -- Its message was taken (or it is leaving the queue some other way): no longer
    -- waiting for one.
    redis.call('ZREM', K.publications(before[9]), id)
    redis.call('HDEL', K.job(id), 'lost_at')
  end
  if before[1] == 'sending' and state ~= 'sending' and before[8] then
    redis.call('SREM', K.held(before[8]), id)
    redis.call('HDEL', K.job(id), 'holder', 'ctok')
  end
  if before[2] and before[2] ~= '' then
    local fk = funnel_key(before[2], before[3] or '0')
    if before[1] then redis.call('HINCRBY', fk, before[1], -1) end
    redis.call('HINCRBY', fk, state, 1)
    -- Why, by Meta code: jobs that failed with it, and waits it caused (a retry).
    if (state == 'failed' or state == 'retry_wait') and extra_fields and
        extra_fields.err_code and extra_fields.err_code ~= '' and
        extra_fields.err_code ~= cjson.null then
      local why = state == 'failed' and 'failed:' or 'retries:'
      redis.call('HINCRBY', fk, why .. tostring(extra_fields.err_code), 1)
    end
  end
  local lane = before[5] or ''
  count_state(before[4], lane, before[1], state)
  if extra_fields then
    local code = extra_fields.err_code
    if code == nil or code == '' then code = extra_fields.err_status end
    if (code == nil or code == '') and extra_fields.err_msg and state ~= 'skipped' and
        state ~= 'sent' then
      code = 'transport'
    end
    if code ~= nil and code ~= '' then
      redis.call('HINCRBY', K.metric('errors'), (before[4] or '') .. '|' .. tostring(code), 1)
    end
    if extra_fields.gw_ms then observe(K.metric('gw:' .. lane), tonumber(extra_fields.gw_ms)) end
  end
  if state == 'sent' and before[6] then
    observe(K.metric('e2s:' .. lane), NOW - tonumber(before[6]))
  end
  if state == 'dead' then redis.call('ZADD', K.DEAD, NOW, id) end
  local args = {K.job(id), 'state', state, 't_' .. state, NOW}
  local noted = extra_fields and has_error(extra_fields)
  if noted then
    append_history(id, state, extra_fields.att or before[7], extra_fields)
  end
  if extra_fields then
    for k, v in pairs(extra_fields) do
      if not (noted and SENT_STATES[state] and (k == 'err_status' or k == 'err_code' or
          k == 'err_msg')) then
        table.insert(args, k); table.insert(args, v)
      end
    end
  end
  redis.call('HSET', unpack(args))
  if SENT_STATES[state] then redis.call('HDEL', K.job(id), unpack(ERROR_FIELDS)) end
  -- A settled job is kept for the retention; one that leaves a settled state (an
  -- unknown job sent again) is kept until it settles again.
  if TERMINAL[state] then
    redis.call('EXPIRE', K.job(id), RETENTION_S)
  elseif before[1] and TERMINAL[before[1]] then
    redis.call('PERSIST', K.job(id))
  end
end

-- What Meta charges: the job keeps the pricing category, model, billable flag and the
-- conversation (id, origin); a billable message is counted once (Meta repeats pricing
-- on 'sent' and 'delivered') by category in its campaign run's funnel
-- ('billable:<category>'), per number in the metrics ('m:billable', field
-- '<number>|<category>') and per day ('m:billable:<day number>', kept 40 days); with
-- PRICES' estimate (micro-units) its cost is added the same ways ('cost_micros',
-- 'm:cost', 'cost|<number>|<category>').
local function record_billing(id, billing, number, camp, run)
  local k = K.job(id)
  local category = billing.category or 'unknown'
  if type(category) ~= 'string' then category = 'unknown' end
  local fields = {'price_cat', category}
  if billing.model and billing.model ~= cjson.null then
    table.insert(fields, 'price_model'); table.insert(fields, tostring(billing.model))
  end
  if billing.conversation and billing.conversation ~= cjson.null then
    table.insert(fields, 'conv_id'); table.insert(fields, tostring(billing.conversation))
  end
  if billing.origin and billing.origin ~= cjson.null then
    table.insert(fields, 'conv_origin'); table.insert(fields, tostring(billing.origin))
  end
  table.insert(fields, 'billable'); table.insert(fields, billing.billable == true and 1 or 0)
  redis.call('HSET', k, unpack(fields))
  if billing.billable ~= true or redis.call('HSETNX', k, 'billed', NOW) == 0 then return end
  local label = (number or '') .. '|' .. category
  local price = tonumber(billing.price_micros)  -- PRICES' estimate, when configured
  redis.call('HINCRBY', K.metric('billable'), label, 1)
  local day = K.metric('billable:' .. math.floor(NOW / 86400000))
  redis.call('HINCRBY', day, label, 1)
  redis.call('EXPIRE', day, 40 * 86400)
  if price then
    redis.call('HSET', k, 'price_micros', price)
    redis.call('HINCRBY', K.metric('cost'), label, price)
    redis.call('HINCRBY', day, 'cost|' .. label, price)
  end
  if camp and camp ~= '' then
    local fk = funnel_key(camp, run or '0')
    redis.call('HINCRBY', fk, 'billable:' .. category, 1)
    if price then redis.call('HINCRBY', fk, 'cost_micros', price) end
  end
end

-- A delivery status from the gateway's webhook: sent -> delivered -> read, or failed;
-- never backwards (a late 'delivered' does not overwrite 'read'). ``suppress``: the
-- reason to put the recipient on the suppression list when this failure says they opted
-- out ('' otherwise; the caller knows Meta's codes, errors.py's OptedOut). ``billing``
-- (or nil): the status's pricing, kept on the job and counted once if billable.
local function apply_status(id, status, code, message, suppress, billing)
  local k = K.job(id)
  local f = redis.call('HMGET', k, 'state', 'from', 'lane', 'camp', 'wamid', 'to', 'crun')
  local cur = f[1]
  if not cur then return 'missing' end
  if billing and billing ~= cjson.null then record_billing(id, billing, f[2], f[4], f[7]) end
  if status == 'failed' then
    if cur ~= 'sent' and cur ~= 'delivered' then return cur end
    set_state(id, 'failed', {err_code = code or '', err_msg = message or '', err_status = ''})
    if suppress and suppress ~= '' then redis.call('HSET', K.SUPPRESSED, f[6], suppress) end
  else
    local rank, current = RANK[status], RANK[cur]
    if not rank or not current then return cur end
    if rank <= current then
      -- Late (a 'delivered' after 'read'): keep the state, note when it happened.
      redis.call('HSETNX', k, 't_' .. status, NOW)
      return cur
    end
    set_state(id, status)
  end
  event(id, status, f[2], {lane = f[3], camp = f[4], wamid = f[5], code = code})
  return status
end

local function drain_orphans(id, wamid)
  local key = K.orphan(wamid)
  for _, raw in ipairs(redis.call('LRANGE', key, 0, -1)) do
    local s = cjson.decode(raw)
    apply_status(id, s.status, s.code, s.message, s.suppress, s.billing)
  end
  redis.call('DEL', key)
end

-- Reconciling ambiguous sends with the gateway's webhooks. A job held as 'unknown' (its
-- request may or may not have reached the gateway) is resolved as sent when a status
-- arrives for a wamid nobody owns, from the same number to the same recipient.
local function resolve_sent(id, wamid)
  redis.call('HSET', K.job(id), 'wamid', wamid)
  redis.call('SET', K.wamid(wamid), id, 'EX', RETENTION_S)
  set_state(id, 'sent', {err_msg = 'ambiguous send confirmed by the gateway webhook'})
  stat('reconciled')
  local f = redis.call('HMGET', K.job(id), 'from', 'lane', 'camp')
  event(id, 'sent', f[1], {lane = f[2], camp = f[3], wamid = wamid, reconciled = 1})
  drain_orphans(id, wamid)
end

-- Hold a job as unknown: resolve it at once if its webhook already came, else remember
-- it by (number, recipient) and, with recheck_ms > 0, look again then (no webhook by
-- then: it was not sent, and the tick sends it).
local function hold_unknown(id, recheck_ms)
  local f = redis.call('HMGET', K.job(id), 'from', 'to')
  local pair = (f[1] or '') .. ':' .. (f[2] or '')
  local orphan = redis.call('GET', K.orphan_pair(pair))
  if orphan and redis.call('EXISTS', K.wamid(orphan)) == 0 then
    redis.call('DEL', K.orphan_pair(pair))
    resolve_sent(id, orphan)
    return true
  end
  redis.call('SET', K.unknown_pair(pair), id, 'EX', 86400)
  if recheck_ms > 0 then redis.call('ZADD', K.TIMERS, NOW + recheck_ms, id) end
  return false
end

-- A claim whose holder is gone (its lease ran out, or its worker died): the send may
-- or may not have happened. Per lane (``policy``: lane -> 'resend' | 'hold'): resend
-- queues it again (a duplicate is possible, and counted), hold parks it as 'unknown'
-- for the webhooks to settle. Returns 'resent' or 'held', or 'returned' when the claim
-- was never admitted (so certainly not sent: queued again, not ambiguous).
local function claim_lost(id, why, policy, recheck_ms)
  local k = K.job(id)
  local queue, from, lane, camp, att, go =
    unpack(redis.call('HMGET', k, 'queue', 'from', 'lane', 'camp', 'att', 'go'))
  redis.call('ZREM', K.TIMERS, id)
  if go ~= att then
    -- Never admitted under this claim (admit.lua marks 'go' just before the call):
    -- certainly not sent. Due again, no attempt spent, not ambiguous.
    set_state(id, 'queued', {att = tonumber(att or 1) - 1,
                             err_msg = why .. ' before the call: not sent, queued again'})
    publish_one(id, queue, true)
    event(id, 'queued', from, {lane = lane, camp = camp})
    stat('claims_returned')
    return 'returned'
  end
  stat('ambiguous')
  redis.call('HINCRBY', k, 'ambiguous', 1)
  if policy[lane] == 'resend' then
    set_state(id, 'queued', {err_msg = why .. ': sent again (ambiguous)'})
    publish_one(id, queue, true)
    event(id, 'queued', from, {lane = lane, camp = camp, ambiguous = 1})
    return 'resent'
  end
  set_state(id, 'unknown', {err_msg = why .. ': may or may not have been sent'})
  event(id, 'unknown', from, {lane = lane, camp = camp, ambiguous = 1})
  hold_unknown(id, recheck_ms)
  return 'held'
end

-- Claim a job for one attempt (claim.lua, take.lua): see claim.lua for the reply.
-- The claim names its holder (a worker process, by the identity it heartbeats under)
-- and carries the holder's token for this claim: when the holder dies its claims are
-- found at once (recover.lua), and a holder that lost the answer to its claim can give
-- back exactly that claim (unclaim.lua).
local function claim_job(id, LEASE, MAX_ATT, holder, token)
  local k = K.job(id)
  local f = redis.call('HMGET', k, 'state', 'att', 'exp', 'nb', 'next_at', 'env', 'from', 'lane',
    'to', 'camp', 'ch', 'type', 'sess', 'idem')
  local state = f[1]
  if not state then return {0, 'missing'} end
  if state ~= 'queued' and state ~= 'retry_wait' then return {0, state} end
  if state == 'retry_wait' and tonumber(f[5] or 0) > NOW then return {0, 'early'} end
  if tonumber(f[4] or 0) > NOW then return {0, 'scheduled'} end
  if tonumber(f[3] or 0) > 0 and tonumber(f[3]) <= NOW then
    set_state(id, 'expired')
    redis.call('ZREM', K.TIMERS, id)
    event(id, 'expired', f[7])
    return {0, 'expired'}
  end
  if f[10] and f[10] ~= '' then
    -- A campaign's jobs obey it even when already queued: cancelled ones are cancelled,
    -- paused ones are held (not an attempt) until the campaign resumes.
    local camp_state = redis.call('HGET', K.campaign(f[10]), 'state')
    if camp_state == 'cancelled' then
      set_state(id, 'cancelled')
      redis.call('ZREM', K.TIMERS, id)
      event(id, 'cancelled', f[7], {camp = f[10]})
      return {0, 'cancelled'}
    elseif camp_state == 'paused' then
      set_state(id, 'retry_wait', {next_at = NOW + 3600000, wait_reason = 'campaign paused'})
      redis.call('ZADD', K.TIMERS, NOW + 3600000, id)
      redis.call('SADD', K.campaign(f[10], 'held'), id)
      return {0, 'held'}
    end
  end
  local att = tonumber(f[2] or 0) + 1
  if att > MAX_ATT then
    set_state(id, 'dead', {err_msg = 'attempts exhausted (' .. MAX_ATT .. ')'})
    redis.call('ZREM', K.TIMERS, id)
    event(id, 'dead', f[7])
    return {0, 'dead'}
  end
  set_state(id, 'sending', {att = att, lease = NOW + LEASE, holder = holder, ctok = token})
  redis.call('SADD', K.held(holder), id)
  redis.call('ZADD', K.TIMERS, NOW + LEASE, id)
  event(id, 'sending', f[7], {attempt = att})
  local pair = (f[7] or '') .. ':' .. f[9]
  local window = 'unknown'
  if redis.call('EXISTS', K.window(pair)) == 1 then
    window = 'open'
  elseif redis.call('EXISTS', K.closed(pair)) == 1 or
      redis.call('EXISTS', K.seen(pair)) == 1 then
    window = 'closed'
  end
  local suppressed = redis.call('HGET', K.SUPPRESSED, f[9]) or ''
  -- The envelope is 'env' and the columns it was stored without (ENVELOPE_COLUMNS in
  -- ledger/records.py, in that order): ch, type, to, from, sess, lane, idem, camp, nb, exp.
  local columns = {f[11], f[12], f[9], f[7], f[13], f[8], f[14], f[10], f[4], f[3]}
  return {1, att, f[6], window, suppressed, columns}
end
