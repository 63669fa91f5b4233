-- Take the next message of a queue and claim its job, in one atomic step: the worker's
-- fast path for a busy transactional queue (Worker.drain). Celery's consumer delivers one
-- message per round trip and keeps two bookkeeping writes per message; a task that has
-- just sent a job takes the next one itself. Taking and claiming together leave no
-- moment when a message is gone and its job unclaimed: a worker that dies after this is
-- like one that died mid-send (recover.lua finds its claims).
-- ARGV[5] = queue, or '' for any queue in K.READY that the caller serves (the set
-- K.served(ARGV[10])): a worker whose own queue is empty goes on with the others', so
-- that many numbers with a few messages each do not cost a Celery delivery (a BRPOP
-- over every queue) per message. ARGV[6] = lease (ms), ARGV[7] = max attempts,
-- ARGV[8] = the holder, ARGV[9] = the holder's token for this claim.
-- ARGV[11..] (optional): the admission to make with the claim (admit_taken, below).
-- Returns {} when the queue is empty (or none is ready); {1, attempt, env, window,
-- suppressed, columns, admission, id} when this caller may send (admission: admit.lua's
-- answer, or 0 when the caller admits the job itself); {0, reason, 0, id} when the job
-- is not to be sent now (as claim.lua); {2, ''} for a message this script will not
-- judge (not ours, or no record yet: it is put back for Celery's consumer).
-- The admission made with the claim (ARGV[11..], when the caller planned one for the
-- queue's jobs: Limiter.take_plan): one round trip a message instead of two. The plan is
-- admit.lua's KEYS and ARGV for the queue's number, channel and lane (ARGV[11..13]) as
-- the caller computes them for any job, with '\1' standing for the job's recipient, '\2'
-- for its attempt and '\3' for its id in the values ARGV[15] lists (positions from 1);
-- ARGV[14] = how many of the values are KEYS. Only a job the plan fits is admitted here,
-- and only one that will go as it is: a Cloud template, or any Cloud message whose
-- recipient's window is open (else the worker may not send it, and a slot or a recipient
-- of the messaging limit would be spent for nothing); any other is admitted by the
-- worker, as before. Returns admit.lua's answer, or 0 when not admitted here.
local function admit_taken(id, claimed)
  if not ARGV[11] or claimed[1] ~= 1 then return 0 end
  local columns = claimed[6]  -- ch, type, to, from, sess, lane, idem, camp, nb, exp
  if columns[1] ~= ARGV[12] or columns[4] ~= ARGV[11] or columns[6] ~= ARGV[13] or
      (columns[8] and columns[8] ~= '') then
    return 0
  end
  if columns[2] ~= 'template' and claimed[4] ~= 'open' then return 0 end
  local values = {}
  for i = 16, #ARGV do values[i - 15] = ARGV[i] end
  local fill = {['\1'] = columns[3], ['\2'] = tostring(claimed[2]), ['\3'] = id}
  for at in string.gmatch(ARGV[15], '%d+') do
    local i = tonumber(at)
    values[i] = string.gsub(values[i], '[\1\2\3]', fill)
  end
  local count = tonumber(ARGV[14])
  return admit({unpack(values, 1, count)}, {unpack(values, count + 1)})
end

local queue = ARGV[5]
local raw = nil
if queue ~= '' then
  raw = redis.call('RPOP', queue)
  if not raw then redis.call('SREM', K.READY, queue) end
else
  local served = K.served(ARGV[10])
  for _, ready in ipairs(redis.call('SRANDMEMBER', K.READY, 8)) do
    if redis.call('SISMEMBER', served, ready) == 1 then
      raw = redis.call('RPOP', ready)
      if raw then
        queue = ready
        break
      end
      redis.call('SREM', K.READY, ready)  -- empty: until a message is published to it
    end
  end
end
if not raw then return {} end
local ok, msg = pcall(cjson.decode, raw)
local id = nil
if ok and type(msg) == 'table' and type(msg.headers) == 'table' and
    msg.headers.task == 'waapi.send' and type(msg.body) == 'string' then
  local ok_body, body = pcall(cjson.decode, msg.body)
  if ok_body and type(body) == 'table' and type(body[2]) == 'table' then
    local kwargs = body[2]
    id = kwargs.job_id  -- message format 2; format 1 and other apps carry the envelope
    if id == nil and type(kwargs.job) == 'table' then id = kwargs.job.id end
  end
end
if type(id) ~= 'string' or redis.call('EXISTS', K.job(id)) == 0 then
  -- Not one we can claim here: back where it was, for Celery's consumer (which then
  -- drains the queue itself: no draining worker looks there until then).
  redis.call('RPUSH', queue, raw)
  redis.call('SREM', K.READY, queue)
  return {2, ''}
end
if ARGV[5] == '' then stat('taken_elsewhere') end
local result = claim_job(id, tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8], ARGV[9])
table.insert(result, admit_taken(id, result))
table.insert(result, id)
return result
