"""Every key that grows with the jobs is bounded: after a real run (workers, beat, the
sandbox's signed webhooks, retries, failures, a campaign, idempotency keys), each
per-job key carries a TTL no longer than its retention, and the indexes (recent jobs,
per number, dead letters, campaigns) are trimmed once their jobs are past it. What is
left without a TTL is a fixed set of keys whose size does not follow the job count."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import redis

from dispatcher.campaigns import Campaigns, rows
from dispatcher.ledger.jobs import Ledger
from dispatcher.ledger.windows import SEEN_S
from tests.support.data import campaign_spec
from tests.support.stack import own_stack
from tests.support.waiting import FakeClock, wait_until

FROM = ("+15550000001", "+15550000002")
# Keys that are not per job: fixed names, one per number or queue, one per campaign.
FIXED = re.compile(
    r"^(waapi:(events|stats|m:[a-z0-9:]+|recent|recent:\+\d+|timers|dead|workers|beat|"
    r"campaigns|campaigns:due|campaigns:running|suppressed|templates|trimmed|queues|pub:waapi\.[a-z0-9.]+|"
    r"recovery:last|recovery:since)"
    r"|waapi\.[a-z0-9.]+|_kombu\..*|unacked(_index|_mutex)?)$"
)


def test_after_a_run_every_per_job_key_expires_and_the_indexes_are_trimmed(
    tmp_path: Path,
) -> None:
    with own_stack(tmp_path, "--no-window", "--seed", "3") as stack:
        url = stack.start_serve()
        stack.sandbox.webhooks(url=url + "/v1/webhooks/waapi")
        stack.sandbox.faults(recipient_errors={"+15557000003": 131026}, rate_5xx=0.2)
        settings = stack.settings()
        with stack.dispatcher() as dispatcher:
            ids = [
                dispatcher.send_template(
                    f"+1555700{n:04d}",
                    FROM[n % 2],
                    "hello_world",
                    "en",
                    idempotency_key=f"order-{n}",
                    lane="bulk" if n % 3 else "transactional",
                )
                for n in range(60)
            ]
            campaigns = Campaigns(dispatcher)
            audience = "\n".join(
                json.dumps({"to": f"+1555800{n:04d}", "name": "A", "awb": n}) for n in range(20)
            )
            created = campaigns.create(
                campaign_spec(schedule={"at": datetime.now(UTC).isoformat()}),
                rows(io.StringIO(audience), "jsonl"),
            )
            stack.start_worker(threads=8)
            stack.start_beat()
            states = stack.wait_states(
                dispatcher, ids, timeout_s=120, settled=frozenset({"read", "failed"})
            )
            assert set(states.values()) == {"read", "failed"}

            def campaign_done() -> bool:
                info = campaigns.get(created.campaign_id)
                return info is not None and info["state"] == "done"

            wait_until(campaign_done, timeout_s=60)
            stack.stop()  # nothing else writes from here on
            client: redis.Redis = dispatcher.ledger.client

            longest_s = max(
                settings.job_retention_s,
                settings.idempotency_window_s,
                settings.webhook_dedupe_s,
                SEEN_S,
            )
            unbounded = []
            for raw in client.scan_iter(count=1000):
                key = raw.decode()
                # In ms: a key with under a second left reads TTL 0 and is bounded;
                # -1 (no expiry) is what this looks for, -2 (gone meanwhile) is fine.
                ttl_ms = client.pttl(key)
                if FIXED.match(key) or key.startswith(f"waapi:camp:{created.campaign_id}"):
                    continue
                if ttl_ms != -2 and not 0 < ttl_ms <= longest_s * 1000:
                    unbounded.append((key, ttl_ms))
            assert unbounded == []
            job = f"waapi:job:{ids[0]}"
            assert 0 < client.ttl(job) <= settings.job_retention_s
            for part in ("", ":aud", ":f:1"):  # a finished campaign goes with its jobs
                assert client.ttl(f"waapi:camp:{created.campaign_id}{part}") > 0
            assert client.zcard("waapi:timers") == 0  # settled jobs have no timer

            # Past the retention the job hashes are gone (Redis expires them); the
            # trim drops what still points at them.
            later = FakeClock(datetime.now(UTC).timestamp() + settings.job_retention_s + 1)
            ledger = Ledger(client, settings, later)
            for key in (job, f"waapi:camp:{created.campaign_id}", "waapi:trimmed"):
                client.delete(key)  # as Redis's expiry will have done by then
            assert ledger.trim(settings.from_numbers)
            assert not ledger.trim(settings.from_numbers)  # at most once a minute
            assert client.zcard("waapi:recent") == 0
            assert all(client.zcard(f"waapi:recent:{n}") == 0 for n in FROM)
            assert client.zcard("waapi:dead") == 0
            assert client.zcard("waapi:campaigns") == 0
            assert client.xlen("waapi:events") <= settings.events_maxlen + 100  # capped
