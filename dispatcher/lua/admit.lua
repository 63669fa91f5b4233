-- One atomic admission decision over every limit that applies to a job.
--
-- Each limit is a GCRA with reservation: emission interval T (ms) and burst tolerance
-- tau = T * (burst - 1) (ms); its state is the theoretical arrival time TAT (ms). A job
-- may go at the earliest time that every limit conforms at and no cooldown covers. If
-- that time is within the caller's max wait, every limit is charged at that time and
-- the delay is returned (the caller sleeps it, holding its reserved slot); otherwise
-- nothing is charged. Either every limit is charged or none is.
--
-- KEYS[1..n]       TAT of each limit
-- KEYS[n+1..n+c]   cooldown flags: a key's remaining PTTL is a wait for everyone
-- KEYS[n+c+1]      the sending number's paused flag
-- KEYS[n+c+2..+3]  metrics: waits per (number, kind) and time waited per number (ms)
-- ARGV[1] = n, ARGV[2] = c, ARGV[3] = max wait (ms), ARGV[4] = now (ms), or '' to use
-- Redis TIME (tests pass a simulated clock), then T and tau for each limit, then the
-- number the metrics are counted under.
-- Returns {'ok', delay_ms} (charged), {'wait', delay_ms} (not charged), {'paused', 0}.
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
  return {'paused', '0'}
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
local delay = start - now
if delay > max_wait then
  waited('park', delay)
  return {'wait', string.format('%.3f', delay)}
end
if delay > 0 then waited('sleep', delay) end
for i = 1, n do
  local T, tau = tonumber(ARGV[3 + 2 * i]), tonumber(ARGV[4 + 2 * i])
  local tat = math.max(tats[i], start) + T
  redis.call('SET', KEYS[i], string.format('%.3f', tat), 'PX', math.ceil(tat - now + tau) + 1000)
end
return {'ok', string.format('%.3f', delay)}
