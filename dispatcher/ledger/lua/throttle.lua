-- The adaptive throttle's counts (admit.lua says how they are used), shared by the
-- admission (a call held back) and finish.lua (a call made): part of the library's
-- shared code (dispatcher/ledger/scripts.py). A scope is one hash: 'r:<bucket>' counts
-- the calls made or held back in a bucket of bucket_ms, 'a:<bucket>' those the gateway
-- took. A bucket's first count deletes the buckets that left the window (nb buckets),
-- and the hash expires whole when idle for longer than the window.
local function throttle_count(scope, bucket, nb, bucket_ms, taken)
  if redis.call('HINCRBY', scope, 'r:' .. bucket, 1) == 1 then
    local old = {}
    for i = nb, 2 * nb + 1 do
      old[#old + 1] = 'r:' .. (bucket - i); old[#old + 1] = 'a:' .. (bucket - i)
    end
    redis.call('HDEL', scope, unpack(old))
  end
  if taken then redis.call('HINCRBY', scope, 'a:' .. bucket, 1) end
  redis.call('PEXPIRE', scope, bucket_ms * (nb + 1))
end
