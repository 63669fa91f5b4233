"""The limiter with real worker processes: shared cooldowns, pauses, and 5,000 jobs
through a tight quota with nothing lost, nothing twice and no 429 of our own making."""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.data import hello_line
from tests.support.processes import RedisProcess, SandboxProcess
from tests.support.stack import Stack
from tests.support.waiting import wait_until

FROM = "+15550000001"


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator:  # type: ignore[type-arg]
    started: list[tuple[Stack, RedisProcess, SandboxProcess]] = []

    def make(*sandbox_args: str, **settings: object) -> Stack:
        redis_server = RedisProcess.start(tmp_path / "redis")
        sandbox = SandboxProcess.start("--no-window", *sandbox_args)
        stack = Stack(redis_server, sandbox, tmp_path, **settings)
        started.append((stack, redis_server, sandbox))
        return stack

    yield make
    for stack, redis_server, sandbox in started:
        stack.stop()
        sandbox.stop()
        redis_server.stop()


def cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dispatcher", *args],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_429_cools_the_key_down_for_every_worker(make_stack) -> None:  # type: ignore[no-untyped-def]
    stack = make_stack()
    stack.sandbox.faults(burst_429=1, retry_after_s=3)
    with stack.dispatcher() as dispatcher:
        for _ in range(2):
            stack.start_worker(threads=4)
        stack.start_beat()
        ids = [
            dispatcher.send_template(f"+1555123{n:04d}", FROM, "hello_world", "en")
            for n in range(20)
        ]
        states = stack.wait_states(dispatcher, ids, timeout_s=60)
        assert set(states.values()) == {"sent"}
        [limited] = [dispatcher.job(i) for i in ids if dispatcher.job(i).attempts == 2]
    from datetime import datetime

    cooled_at = datetime.fromisoformat(limited.times["retry_wait"]).timestamp()
    during = [r for r in stack.sandbox.sent() if cooled_at + 0.3 < r["time"] < cooled_at + 2.9]
    assert during == []  # no worker sent anything while the key cooled down
    assert len(stack.sandbox.sent()) == 20


def test_spam_limit_pauses_the_number_until_resumed(make_stack) -> None:  # type: ignore[no-untyped-def]
    stack = make_stack(pause_recheck_s=2)
    stack.sandbox.faults(recipient_errors={"+15551230001": 131048})
    with stack.dispatcher() as dispatcher:
        stack.start_worker(threads=4)
        stack.start_beat()
        flagged = dispatcher.send_template("+15551230001", FROM, "hello_world", "en")
        wait_until(
            lambda: (
                dispatcher.job(flagged).attempts == 1
                and dispatcher.job(flagged).state == "retry_wait"
            ),
            timeout_s=30,
        )
        later = dispatcher.send_template("+15551230002", FROM, "hello_world", "en")
        other_number = dispatcher.send_template("+15551230003", "+15550000002", "hello_world", "en")
        stack.wait_states(dispatcher, [other_number])
        wait_until(lambda: dispatcher.job(later).state == "retry_wait", timeout_s=30)
        assert dispatcher.job(later).attempts == 0  # waiting is not an attempt
        limits = json.loads(cli(stack, "limits", "--json").stdout)
        paused = {n["number"]: n["paused"] for n in limits["numbers"]}
        assert paused[FROM]["reason"].startswith("131048")
        assert paused["+15550000002"] is None
        assert [r["to"] for r in stack.sandbox.sent()] == ["+15551230003"]

        stack.sandbox.faults(recipient_errors={})
        resumed = cli(stack, "numbers", "resume", FROM)
        assert resumed.returncode == 0 and "resumed" in resumed.stdout
        states = stack.wait_states(dispatcher, [flagged, later], timeout_s=30)
        assert set(states.values()) == {"sent"}
        events = [
            {k.decode(): v.decode() for k, v in f.items()}
            for _, f in dispatcher.ledger.client.xrange("waapi:events")
        ]
        alerts = [e for e in events if e["state"] in ("paused", "resumed")]
        assert [(a["state"], a["number"]) for a in alerts] == [("paused", FROM), ("resumed", FROM)]


def test_5000_jobs_through_a_tight_quota_lose_nothing_and_draw_no_429(make_stack) -> None:  # type: ignore[no-untyped-def]
    quota_per_minute = 24_000  # 400/s at the sandbox, 396/s after our 1% headroom
    keys = [
        {
            "name": "tight",
            "key": "waapi_sandbox",
            "secret": "secr_sandbox",
            "numbers": ["+15550000001", "+15550000002"],
            "per_minute": quota_per_minute,
        }
    ]
    stack = make_stack(
        "--per-minute", str(quota_per_minute), waapi_keys=json.dumps(keys), number_per_second=1000
    )
    with stack.dispatcher() as dispatcher:
        lines = [hello_line(n, FROM if n % 2 else "+15550000002") for n in range(5000)]
        ids = [r.job_id for r in dispatcher.send_many(lines, lane="transactional")]
        for _ in range(3):
            stack.start_worker()
        stack.start_beat()
        states = stack.wait_states(dispatcher, ids, timeout_s=120)
    assert collections.Counter(states.values()) == {"sent": 5000}
    per_recipient = collections.Counter(r["to"] for r in stack.sandbox.sent())
    assert len(per_recipient) == 5000 and set(per_recipient.values()) == {1}
    assert stack.sandbox.stats()["counters"].get("quota_429", 0) == 0


def test_bulk_leaves_the_reserved_share_to_transactional_jobs(make_stack) -> None:  # type: ignore[no-untyped-def]
    keys = [
        {
            "name": "tight",
            "key": "waapi_sandbox",
            "secret": "secr_sandbox",
            "numbers": ["+15550000001", "+15550000002"],
            "per_minute": 600,
        }
    ]  # 10/s
    stack = make_stack(waapi_keys=json.dumps(keys), transactional_reserve=0.2)
    with stack.dispatcher() as dispatcher:
        bulk = [
            dispatcher.send_template(f"+1556{n:07d}", FROM, "hello_world", "en", lane="bulk")
            for n in range(300)
        ]
        stack.start_worker()
        stack.start_beat()
        wait_until(lambda: len(stack.sandbox.sent()) >= 30, timeout_s=30)
        otps = [
            dispatcher.send_text(f"+1557{n:07d}", FROM, "code", lane="transactional")
            for n in range(6)
        ]
        stack.wait_states(dispatcher, otps, timeout_s=30)
        records = stack.sandbox.sent()
        bulk_left = sum(1 for i in bulk if dispatcher.job(i).state != "sent")
    otp_done = max(r["time"] for r in records if r["to"].startswith("+1557"))
    otp_start = min(r["time"] for r in records if r["to"].startswith("+1557"))
    # Bulk may use 80% of 9.9/s; the rest is there for the OTPs, which go within seconds
    # while the bulk backlog is still far from drained.
    assert bulk_left > 150
    assert otp_done - otp_start < 5.0
