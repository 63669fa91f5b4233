-- Claim a job for one attempt: queued|retry_wait -> sending, with a lease.
-- ARGV[5] = job id, ARGV[6] = lease (ms), ARGV[7] = max attempts, ARGV[8] = the holder
-- (the worker's identity), ARGV[9] = the holder's token for this claim.
-- Returns {1, attempt, env, window, suppressed, columns} when this caller may send, or
-- {0, reason}: the job's state (a duplicate delivery), 'missing', 'early' (retry not yet
-- due), 'scheduled'. ``window`` is what the webhooks told us of the recipient's
-- customer-service window: 'open', 'closed' or 'unknown'; ``suppressed`` is the reason
-- the recipient is on the suppression list, or ''. ``env`` and ``columns`` make the
-- job's envelope (ledger/records.py: envelope_of). ARGV[10..] (optional): the admission to
-- make with the claim (admit.lua: admit_claimed); its answer (or 0) then follows the
-- reply's columns, or its reason.
local result = claim_job(ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8], ARGV[9])
if ARGV[10] then table.insert(result, admit_claimed(ARGV[5], result, 10)) end
return result
