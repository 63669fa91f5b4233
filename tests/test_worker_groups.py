"""Many numbers: two worker groups, each serving its own 500 of 1,000 numbers under its
own host name, hold one key's quota together, as one worker would; one worker sends
single jobs over hundreds of numbers by going from queue to queue.

Only the quota is set for the test (6,000 a minute, so that it binds within seconds);
every other setting is as shipped, Meta's 80/s per number included.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dispatcher.job.queues import queue_name
from dispatcher.ledger import schema
from tests.support.data import hello_line
from tests.support.processes import most_in_window
from tests.support.stack import Stack, own_stack

NUMBERS = [f"+1555100{n:04d}" for n in range(1000)]
PER_MINUTE = 6000
JOBS = 2000


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    config = tmp_path / "sandbox.json"
    config.write_text(
        json.dumps(
            {
                "keys": [{"key": "waapi_sandbox", "secret": "secr_sandbox", "numbers": NUMBERS}],
                "templates": [{"name": "hello_world", "language": "en"}],
            }
        )
    )
    key = {
        "name": "sandbox",
        "key": "waapi_sandbox",
        "secret": "secr_sandbox",
        "numbers": NUMBERS,
        "per_minute": PER_MINUTE,
    }
    with own_stack(
        tmp_path,
        "--config",
        str(config),
        "--no-window",
        "--per-minute",  # the gateway refuses what goes over the quota (429)
        str(PER_MINUTE),
        waapi_keys=json.dumps([key]),
    ) as stack:
        yield stack


def test_two_worker_groups_over_1000_numbers_hold_one_quota_together(stack: Stack) -> None:
    """2,000 jobs, two per number. Group A (host-a) serves the first 500 numbers, group B
    (host-b) the rest; each alone could send far above the key's quota (500 numbers at
    72/s each), together they send at the quota, as the gateway counts, and every job
    once."""
    with stack.dispatcher() as dispatcher:
        lines = [hello_line(n, NUMBERS[n % len(NUMBERS)]) for n in range(JOBS)]
        ids = [r.job_id for r in dispatcher.send_many(lines, lane="transactional")]
        for name, half in (("a", NUMBERS[:500]), ("b", NUMBERS[500:])):
            stack.start_worker("--numbers", ",".join(half), "-n", f"group-{name}@host-{name}")
        stack.start_beat()
        states = stack.wait_states(dispatcher, ids, timeout_s=180)
        client = dispatcher.ledger.client
        served = [
            {q.decode() for q in client.smembers(key) if b".cloud." in q}
            for key in client.scan_iter(schema.served("*"))
        ]
    sent = stack.sandbox.sent()
    times = [float(item["received"]) for item in sent]
    per_recipient = collections.Counter(item["to"] for item in sent)
    senders = collections.Counter(item["from"] in NUMBERS[:500] for item in sent)
    busiest = most_in_window(times, 10.0)
    allowed = PER_MINUTE / 6  # the quota's share of 10 s
    rate = (len(times) - 1) / (max(times) - min(times))
    print(
        f"\ntwo worker groups, 1,000 numbers: {len(sent)} sent at {rate:.0f} msg/s (quota "
        f"{PER_MINUTE / 60:.0f}/s), busiest 10 s {busiest} (quota's share {allowed:.0f}); "
        f"group A's numbers {senders[True]}, group B's {senders[False]}"
    )
    assert set(states.values()) == {"sent"}
    assert len(per_recipient) == JOBS and set(per_recipient.values()) == {1}
    assert senders[True] == senders[False] == JOBS // 2  # both groups sent theirs
    # Each group said which queues it serves: its draining threads take only from those.
    halves = [
        {queue_name("cloud", n, "transactional") for n in half}
        for half in (NUMBERS[:500], NUMBERS[500:])
    ]
    assert sorted(served, key=sorted) == sorted(halves, key=sorted)
    # Together at the key's quota, not at the sum of two groups' own (about 200/s here).
    assert rate <= PER_MINUTE / 60
    assert stack.sandbox.stats()["counters"].get("quota_429", 0) == 0


def test_a_worker_goes_from_queue_to_queue_over_many_numbers(stack: Stack) -> None:
    """600 jobs enqueued one at a time over 300 numbers, two each, for one worker serving
    all 1,000 numbers: its draining threads take them from queue to queue (a Celery
    delivery, a BRPOP over 2,000 queues, would otherwise carry each), each job once."""
    with stack.dispatcher() as dispatcher:
        ids = [
            dispatcher.send_template(f"+1555200{n:04d}", NUMBERS[n % 300], "hello_world", "en")
            for n in range(600)
        ]
        stack.start_worker()
        stack.start_beat()
        states = stack.wait_states(dispatcher, ids, timeout_s=120)
        taken_elsewhere = dispatcher.ledger.stats().get("taken_elsewhere", 0)
    sent = stack.sandbox.sent()
    print(f"\none worker, 300 numbers: {taken_elsewhere} of 600 jobs taken from queue to queue")
    assert set(states.values()) == {"sent"}
    assert sorted(item["to"] for item in sent) == sorted(f"+1555200{n:04d}" for n in range(600))
    assert taken_elsewhere > 200
