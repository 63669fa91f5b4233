-- Take the next message of a queue and claim its job, in one atomic step: the worker's
-- fast path for a busy transactional queue (Worker.drain). Celery's consumer delivers one
-- message per round trip and keeps two bookkeeping writes per message; a task that has
-- just sent a job takes the next one itself. Taking and claiming together leave no
-- moment when a message is gone and its job unclaimed: a worker that dies after this is
-- like one that died mid-send (recover.lua finds its claims).
-- ARGV[5] = queue, or '' for any queue in K.READY that the caller serves (the set
-- K.served(ARGV[10])): a worker whose own queue is empty goes on with the others', so
-- that many numbers with a few messages each do not cost a Celery delivery (a BRPOP
-- over every queue) per message. Given both, the queue first and then, when it is
-- empty, any other (one call where two found nothing). ARGV[6] = lease (ms),
-- ARGV[7] = max attempts, ARGV[8] = the holder, ARGV[9] = the holder's token for this
-- claim.
-- ARGV[11..] (optional): the admission to make with the claim (admit.lua: admit_claimed).
-- Returns {} when the queue is empty (or none is ready); {1, attempt, env, window,
-- suppressed, columns, admission, id, backlog} when this caller may send (admission:
-- admit.lua's answer, or 0 when the caller admits the job itself; backlog: the messages
-- left in the queue, so the send loop starts another lane only while one is behind);
-- {0, reason, 0, id, backlog} when the job is not to be sent now (as claim.lua); {2, ''}
-- for a message this script will not judge (not ours, or no record yet: it is put back
-- for Celery's consumer).
local queue = ARGV[5]
local raw = nil
if queue ~= '' then
  raw = redis.call('RPOP', queue)
  if not raw then redis.call('SREM', K.READY, queue) end
end
if not raw and ARGV[10] ~= '' then
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
if queue ~= ARGV[5] then stat('taken_elsewhere') end
local result = claim_job(id, tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8], ARGV[9])
table.insert(result, admit_claimed(id, result, 11))
table.insert(result, id)
table.insert(result, redis.call('LLEN', queue))
return result
