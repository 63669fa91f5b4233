-- One atomic admission decision over every limit that applies to a job: admit(KEYS,
-- ARGV), called by the library's admission function (scripts.py: ledger_library) and by
-- take.lua and claim.lua, which admit the job they claim when the caller planned its
-- admission (admit_claimed, at the end).
--
-- Each limit is a GCRA with reservation: emission interval T (ms) and burst tolerance
-- tau = T * (burst - 1) (ms); its state is the theoretical arrival time TAT (ms). A job
-- may go at the earliest time that every limit conforms at and no cooldown covers. If
-- that time is within the caller's max wait, every limit is charged at that time and
-- the delay is returned (the caller sleeps it, holding its reserved slot); otherwise
-- nothing is charged. Either every limit is charged or none is.
--
-- Before the limits, the adaptive throttle (client-side throttling as in Google's SRE
-- book, per API key and per sending number, shared by every worker): over the window,
-- R calls were made (finish.lua counts them as they end) or held back here, and the
-- gateway took A of them (answered other than 5xx/429, connection not lost). Once
-- R >= min, an admission is held back with probability (R - K*A) / (R + 1): a gateway
-- that takes 65% of calls is not slowed at all (K = 2), one that takes nothing gets
-- only probes (one per probe interval per scope) and is not hammered, and the rate
-- comes back as the gateway takes calls again. A held-back job waits (not an attempt).
--
-- KEYS[1..n]       TAT of each limit
-- KEYS[n+1..n+c]   cooldown flags: a key's remaining PTTL is a wait for everyone
-- KEYS[n+c+1]      the sending number's paused flag
-- KEYS[n+c+2..+3]  metrics: waits per (number, kind) and time waited per number (ms)
-- KEYS[n+c+4..+5]  when m = 1, Meta's messaging limit: the portfolio's recipients of
--                  business-initiated sends (zset recipient -> last send, ms) and the
--                  recipient's customer-service window flag (open: the send is free)
-- KEYS[b+1..b+g]   (b = n+c+3+2m) the throttle's scopes: each a hash of the counts of
--                  the window's buckets, fields 'r:<bucket>' and 'a:<bucket>' (one read
--                  per scope), expiring a bucket after the window when idle
-- KEYS[b+g+1]      the probe slot (a TAT) of the first scope (when g > 0)
-- KEYS[last]       the job's record, when admitted under a claim: 'go' = the attempt
--                  (a claim lost before this was never sent; see claim_lost)
-- ARGV[1] = n, ARGV[2] = c, ARGV[3] = max wait (ms), ARGV[4] = now (ms), or '' to use
-- Redis TIME (tests pass a simulated clock), then T and tau for each limit, then the
-- number the metrics are counted under, then the throttle: g (0 = off), K, min
-- admissions, bucket (ms), buckets per window, two uniform draws in [0, 1), the probe
-- interval (ms), then the claim's attempt ('' = not under a claim), then the messaging
-- limit: m (0 = none), the lane's budget (recipients), the recipient, the window (ms),
-- a uniform draw in [0, 1).
-- Returns {'ok', delay_ms, probe, ''} (charged; probe = 1 when let through as the
-- throttle's probe), {'wait', delay_ms, 0, why} (not charged; why is 'throttle',
-- 'limits' or 'reach'; delay_ms: when to ask again, for 'limits' the time until the job
-- could go less the max wait), {'paused', 0, 0, 'paused'}.
--
-- The messaging limit (Meta counts unique recipients of business-initiated messages per
-- business portfolio over a moving 24 hours): a send to a recipient whose window is not
-- known open counts, unless the recipient is in the portfolio's last 24 hours already.
-- Over the lane's budget the job waits (not charged) until a slot leaves the window: the
-- moment one of the entries past the budget's edge, picked at random, is 24 hours old,
-- so that the jobs waiting spread over the time the slots free up instead of all waking
-- at the first.
local function admit(KEYS, ARGV)
  local n, c, max_wait = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
  local now
  if ARGV[4] ~= '' then
    now = tonumber(ARGV[4])
  else
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
  end
  local label = ARGV[5 + 2 * n]
  local function waited(kind, ms)
    redis.call('HINCRBY', KEYS[n + c + 2], label .. '|' .. kind, 1)
    if ms > 0 then redis.call('HINCRBY', KEYS[n + c + 3], label, math.floor(ms + 0.5)) end
  end
  if redis.call('EXISTS', KEYS[n + c + 1]) == 1 then
    waited('paused', 0)
    return {'paused', '0', 0, 'paused'}
  end
  local start = now
  for i = 1, c do
    local ttl = redis.call('PTTL', KEYS[n + i])
    if ttl > 0 and now + ttl > start then start = now + ttl end
  end
  local tats = {}
  for i = 1, n do
    local tau = tonumber(ARGV[4 + 2 * i])
    local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
    tats[i] = tat
    if tat - tau > start then start = tat - tau end
  end
  -- Meta's messaging limit.
  local m = tonumber(ARGV[15 + 2 * n] or '0')
  local counted = false  -- the send counts against the portfolio's messaging limit
  if m > 0 then
    local zset, span = KEYS[n + c + 4], tonumber(ARGV[18 + 2 * n])
    local who = ARGV[17 + 2 * n]
    if redis.call('EXISTS', KEYS[n + c + 5]) == 0 then
      counted = true
      redis.call('ZREMRANGEBYSCORE', zset, '-inf', now - span)
      if not redis.call('ZSCORE', zset, who) then
        local used, budget = redis.call('ZCARD', zset), tonumber(ARGV[16 + 2 * n])
        if used >= budget then
          local edge = used - budget  -- the oldest entry whose leaving frees a slot
          local pick = edge + math.floor(tonumber(ARGV[19 + 2 * n]) * (used - edge))
          local at = redis.call('ZRANGE', zset, pick, pick, 'WITHSCORES')
          local hold = math.max(1000, tonumber(at[2]) + span - now)
          waited('reach', hold)
          return {'wait', string.format('%.3f', hold), 0, 'reach'}
        end
      end
    end
  end
  -- The adaptive throttle.
  local g = tonumber(ARGV[6 + 2 * n] or '0')
  local b = n + c + 3 + 2 * m
  local probing = 0  -- 1: let through as the scope's probe while the throttle holds
  if g > 0 then
    local scopes = {}
    local K, MIN = tonumber(ARGV[7 + 2 * n]), tonumber(ARGV[8 + 2 * n])
    local BUCKET, NB = tonumber(ARGV[9 + 2 * n]), tonumber(ARGV[10 + 2 * n])
    local u, v, PROBE = tonumber(ARGV[11 + 2 * n]), tonumber(ARGV[12 + 2 * n]),
      tonumber(ARGV[13 + 2 * n])
    local bucket = math.floor(now / BUCKET)
    local window = {}  -- the window's fields: r and a of each of its buckets
    for i = 0, NB - 1 do
      window[2 * i + 1] = 'r:' .. (bucket - i)
      window[2 * i + 2] = 'a:' .. (bucket - i)
    end
    local p = 0
    for j = 1, g do
      scopes[j] = KEYS[b + j]
      local counts = redis.call('HMGET', scopes[j], unpack(window))
      local r, a = 0, 0
      for i = 1, 2 * NB, 2 do
        r = r + tonumber(counts[i] or '0'); a = a + tonumber(counts[i + 1] or '0')
      end
      if r >= MIN and (r - K * a) / (r + 1) > p then p = (r - K * a) / (r + 1) end
    end
    if u < p then
      local probe = KEYS[b + g + 1]
      if tonumber(redis.call('GET', probe) or '0') <= now then
        redis.call('SET', probe, string.format('%.3f', now + PROBE), 'PX', math.ceil(PROBE) + 1000)
        probing = 1
      else
        for j = 1, g do throttle_count(scopes[j], bucket, NB, BUCKET, false) end
        local hold = math.max(250, BUCKET * NB * p * (0.5 + v))
        waited('throttle', hold)
        return {'wait', string.format('%.3f', hold), 0, 'throttle'}
      end
    end
  end
  local delay = start - now
  if delay > max_wait then
    waited('park', delay)
    -- Asked again once the job's slot is within the max wait, so that it reserves the
    -- slot ahead: a job given back until its slot came found it gone by, and the slots
    -- between unused (a third of every third second at a key's quota).
    return {'wait', string.format('%.3f', delay - max_wait), 0, 'limits'}
  end
  if ARGV[14 + 2 * n] and ARGV[14 + 2 * n] ~= '' then
    redis.call('HSET', KEYS[#KEYS], 'go', ARGV[14 + 2 * n])
  end
  if delay > 0 then waited('sleep', delay) end
  for i = 1, n do
    local T, tau = tonumber(ARGV[3 + 2 * i]), tonumber(ARGV[4 + 2 * i])
    local tat = math.max(tats[i], start) + T
    redis.call('SET', KEYS[i], string.format('%.3f', tat), 'PX', math.ceil(tat - now + tau) + 1000)
  end
  if counted then  -- in the portfolio's window from when it goes (or again, if it was)
    local zset, span = KEYS[n + c + 4], tonumber(ARGV[18 + 2 * n])
    redis.call('ZADD', zset, string.format('%.3f', start), ARGV[17 + 2 * n])
    redis.call('PEXPIRE', zset, math.ceil(start - now + span) + 60000)
  end
  return {'ok', string.format('%.3f', delay), probing, ''}
end

-- The admission a claim script makes with its claim (take.lua, claim.lua), when the caller
-- planned one for the queue the job came from (ARGV[at..]: Limiter.queue_plan): one
-- round trip a message instead of two. The plan is admit's KEYS and ARGV for any job of
-- one number, channel, lane and campaign (ARGV[at..at+3], '' for none) as the caller
-- computes them, '\1' standing for the job's recipient, '\2' for its attempt and '\3'
-- for its id in the values that ARGV[at+5] lists (positions from 1); ARGV[at+4] = how
-- many of the values are KEYS. Only a job the plan fits is admitted here (a transactional
-- job, so the suppression list, which holds back bulk jobs only, does not apply; one
-- with a campaign id may carry the campaign's own rate, which no plan has), and only one
-- that goes as it is: a template, or a message to a recipient whose window is open (else
-- the worker sends its fallback, and a recipient of the messaging limit would be spent
-- for nothing); the worker admits any other itself. Returns admit's answer, or 0 when
-- the job was not admitted here.
local function admit_claimed(id, claimed, at)
  if not ARGV[at] or claimed[1] ~= 1 then return 0 end
  local columns = claimed[6]  -- ch, type, to, from, sess, lane, idem, camp, nb, exp
  if columns[4] ~= ARGV[at] or columns[1] ~= ARGV[at + 1] or columns[6] ~= ARGV[at + 2] or
      (columns[8] or '') ~= ARGV[at + 3] then
    return 0
  end
  if columns[2] ~= 'template' and claimed[4] ~= 'open' then return 0 end
  local first, values = at + 6, {}
  for i = first, #ARGV do values[i - first + 1] = ARGV[i] end
  local fill = {['\1'] = columns[3], ['\2'] = tostring(claimed[2]), ['\3'] = id}
  for position in string.gmatch(ARGV[at + 5], '%d+') do
    local i = tonumber(position)
    values[i] = string.gsub(values[i], '[\1\2\3]', fill)
  end
  local count = tonumber(ARGV[at + 4])
  return admit({unpack(values, 1, count)}, {unpack(values, count + 1)})
end
