-- Apply one delivery status from a webhook to the job that sent ``wamid``; a status for a
-- wamid the ledger does not know yet (it can arrive before the send's answer is stored)
-- is parked and applied by finish.lua when the wamid is recorded.
-- ARGV[5] = wamid, ARGV[6] = status (sent|delivered|read|failed), ARGV[7] = Meta code
-- ('' if none), ARGV[8] = message, ARGV[9] = our number and ARGV[10] = the recipient,
-- both E.164 ('' if unknown), ARGV[11] = the suppression reason when the failure says
-- the recipient opted out ('' otherwise), ARGV[12] = the status's billing as JSON
-- {billable, category, model, conversation, origin} ('' if none). A parked status is
-- kept for the retention.
-- Returns {applied state or current state, job id or ''}; 'parked' when parked.
local wamid, status, code, message = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local number, recipient, suppress = ARGV[9], ARGV[10], ARGV[11]
local billing = ARGV[12] ~= '' and cjson.decode(ARGV[12]) or nil
local id = redis.call('GET', K.wamid(wamid))
if not id and number ~= '' then
  -- Nobody owns this wamid yet. A job of the same number and recipient held as
  -- 'unknown' was sent after all: this is its status.
  local pair = number .. ':' .. recipient
  local held = redis.call('GET', K.unknown_pair(pair))
  if held and redis.call('HGET', K.job(held), 'state') == 'unknown' then
    redis.call('DEL', K.unknown_pair(pair))
    redis.call('ZREM', K.TIMERS, held)
    resolve_sent(held, wamid)
    return {apply_status(held, status, code ~= '' and code or nil, message, suppress, billing), held}
  end
  redis.call('SET', K.orphan_pair(pair), wamid, 'EX', 86400)
end
if not id then
  local key = K.orphan(wamid)
  redis.call('RPUSH', key, cjson.encode({status = status, code = code, message = message,
                                          suppress = suppress, billing = billing}))
  redis.call('EXPIRE', key, RETENTION_S)
  return {'parked', ''}
end
return {apply_status(id, status, code ~= '' and code or nil, message, suppress, billing), id}
