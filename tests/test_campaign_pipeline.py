"""Campaigns end to end: beat, worker processes, the sandbox. Every recipient exactly
once, a funnel that adds up, a bounded queue, and restarts that change nothing."""

from __future__ import annotations

import collections
import io
import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from dispatcher.campaigns import Campaigns, rows
from dispatcher.campaigns.store import IN_FLIGHT
from tests.support.data import campaign_spec
from tests.support.stack import Stack, own_stack
from tests.support.waiting import wait_until


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    # Numbers at Meta's highest throughput tier (1,000/s): these tests are about
    # campaigns, not about pacing.
    with own_stack(tmp_path, "--no-window", number_per_second=1000) as stack:
        yield stack


def create(stack: Stack, recipients: int, **extra: Any) -> tuple[Campaigns, str]:
    spec = campaign_spec(**extra)
    lines = "".join(
        json.dumps({"to": f"+1555{i:07d}", "name": f"N{i}", "awb": i}) + "\n"
        for i in range(recipients)
    )
    campaigns = Campaigns(stack.dispatcher())
    created = campaigns.create(spec, rows(io.StringIO(lines), "jsonl"))
    assert created.recipients == recipients
    return campaigns, created.campaign_id


def finished(campaigns: Campaigns, campaign_id: str) -> bool:
    info = campaigns.get(campaign_id)
    return info is not None and info["state"] == "done"


def test_10000_recipients_each_exactly_once_with_a_bounded_queue(stack: Stack) -> None:
    campaigns, campaign_id = create(stack, 10_000, queueAhead=400)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            info = campaigns.get(campaign_id)
            if info and info["run"]:
                funnel = info["funnel"]
                peak = max(
                    peak,
                    sum(funnel.get(s, 0) for s in IN_FLIGHT),
                )
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        for _ in range(2):
            stack.start_worker()
        stack.start_beat("beat-a")
        stack.start_beat("beat-b")  # two beats at once: the campaign still runs once
        wait_until(lambda: finished(campaigns, campaign_id), timeout_s=150, interval_s=0.5)
    finally:
        stop.set()
        sampler.join()
    per_recipient = collections.Counter(r["to"] for r in stack.sandbox.sent())
    assert len(per_recipient) == 10_000 and set(per_recipient.values()) == {1}
    info = campaigns.get(campaign_id)
    assert info is not None
    funnel = info["funnel"]
    assert sum(v for k, v in funnel.items() if ":" not in k) == 10_000
    assert funnel.get("sent", 0) + funnel.get("delivered", 0) + funnel.get("read", 0) == 10_000
    assert 0 < peak <= 400
    client = campaigns.client
    started = [
        f for _, f in client.xrange("waapi:events") if f.get(b"state") == b"campaign_started"
    ]
    assert len(started) == 1 and info["run"] == 1
    print(f"\n10,000 recipients: peak in flight {peak} (bound 400), funnel {funnel}")


def test_killing_beat_and_a_worker_mid_campaign_sends_nobody_twice(stack: Stack) -> None:
    """With the gateway's webhooks coming in (as they do in production), the jobs the
    killed worker held are resolved at once by its silence (recovery by liveness): those
    it had not yet sent go again, those it may have sent are held ``unknown`` and settled
    by their webhook. Nobody twice; nobody missing but the held ones, which the gateway
    never received (they go again after UNKNOWN_RECHECK_S, 300 s: see test_ledger)."""
    url = stack.start_serve()
    stack.sandbox.webhooks(url=url + "/v1/webhooks/waapi", statuses=["sent"])
    campaigns, campaign_id = create(stack, 3000, queueAhead=300)
    worker = stack.start_worker()
    stack.start_worker()
    beat = stack.start_beat()
    wait_until(lambda: len(stack.sandbox.sent()) >= 800, timeout_s=60)
    for proc in (beat, worker):
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    stack.start_beat()
    stack.start_worker()
    wait_until(lambda: finished(campaigns, campaign_id), timeout_s=120, interval_s=0.5)
    per_recipient = collections.Counter(r["to"] for r in stack.sandbox.sent())
    assert [to for to, n in per_recipient.items() if n > 1] == []  # nobody twice
    report = list(campaigns.report(campaign_id))
    held = {r["to"] for r in report if r["state"] == "unknown"}
    assert {r["state"] for r in report} <= {"sent", "unknown"}
    assert set(per_recipient) == {r["to"] for r in report} - held  # the rest all sent
    records = [campaigns.dispatcher.job(r["jobId"]) for r in report if r["to"] in held]
    assert all(r is not None and r.ambiguous == 1 for r in records)
    stats = campaigns.dispatcher.ledger.stats()
    print(
        f"\nkill mid-campaign: 3,000 recipients, none twice; the dead worker's claims: "
        f"{stats.get('claims_returned', 0)} never sent (queued again), "
        f"{stats.get('ambiguous', 0)} ambiguous ({stats.get('reconciled', 0)} confirmed by "
        f"their webhook, {len(held)} held unknown, never received by the gateway)"
    )


def test_pause_during_fan_out_sends_nothing_until_resumed(stack: Stack) -> None:
    campaigns, campaign_id = create(stack, 600, queueAhead=200)
    campaigns.tick()  # what beat's tick does: launch, and queue the first 200 jobs
    assert campaigns.get(campaign_id)["funnel"] == {"queued": 200}  # type: ignore[index]
    assert campaigns.pause(campaign_id)
    stack.start_worker()
    stack.start_beat()
    wait_until(
        lambda: campaigns.get(campaign_id)["funnel"].get("retry_wait") == 200,  # type: ignore[index]
        timeout_s=30,
    )  # the workers took the queued jobs and held them
    time.sleep(2)
    assert stack.sandbox.sent() == []
    info = campaigns.get(campaign_id)
    assert info is not None and info["fannedOut"] == 200
    assert campaigns.resume(campaign_id)
    wait_until(lambda: finished(campaigns, campaign_id), timeout_s=60, interval_s=0.5)
    assert len({r["to"] for r in stack.sandbox.sent()}) == 600
    assert len(stack.sandbox.sent()) == 600


def test_a_spam_limit_pauses_the_campaign_and_a_throttle_paces_it(stack: Stack) -> None:
    campaigns, campaign_id = create(stack, 40, throttlePerSecond=10)
    stack.start_worker(threads=8)
    stack.start_beat()
    wait_until(lambda: finished(campaigns, campaign_id), timeout_s=60, interval_s=0.5)
    times = sorted(r["time"] for r in stack.sandbox.sent())
    assert len(times) == 40 and times[-1] - times[0] >= 3.5  # 10/s: about 4 s for 40
    flagged, second = create(stack, 30, fromPhoneNos=["+15550000001"])
    stack.sandbox.faults(recipient_errors={"+15550000000": 131048})  # its first recipient
    wait_until(lambda: (flagged.get(second) or {}).get("state") == "paused", timeout_s=30)
    info = flagged.get(second)
    assert info is not None and info["reason"].startswith("number paused")


def beat_leader(stack: Stack) -> int | None:
    """The pid of the beat that leads (its lock's token is ``host:pid``)."""
    with redis.Redis(port=stack.redis.port) as client:
        token = client.get("waapi:beat:leader")
    return int(token.decode().rsplit(":", 1)[1]) if token else None


def test_a_standby_beat_takes_over_within_10_s_and_the_campaign_launches_once(
    stack: Stack,
) -> None:
    """Two beats, as on two hosts: one leads, the other stands by. SIGKILL the leader:
    the standby leads within 10 s (BEAT_LEADER_TTL_S, 5 s, and a tick), and a campaign
    due after the kill launches once, every recipient sent once."""
    for _ in range(2):
        stack.start_worker()
    beats = {proc.pid: proc for proc in (stack.start_beat("beat-a"), stack.start_beat("beat-b"))}
    leader = wait_until(lambda: beat_leader(stack), timeout_s=30)
    assert leader in beats
    time.sleep(2)
    assert beat_leader(stack) == leader  # it renews: nobody else takes over while it lives
    beats[leader].send_signal(signal.SIGKILL)
    beats[leader].wait()
    killed = time.monotonic()
    campaigns, campaign_id = create(stack, 2000, queueAhead=300)
    standby = wait_until(
        lambda: (pid := beat_leader(stack)) not in (None, leader) and pid,
        timeout_s=30,
        interval_s=0.1,
    )
    handover_s = time.monotonic() - killed
    wait_until(lambda: finished(campaigns, campaign_id), timeout_s=120, interval_s=0.5)
    per_recipient = collections.Counter(r["to"] for r in stack.sandbox.sent())
    started = [
        f
        for _, f in campaigns.client.xrange("waapi:events")
        if f.get(b"state") == b"campaign_started"
    ]
    print(f"\nbeat leader SIGKILLed: the standby led {handover_s:.1f} s later")
    assert standby in beats and standby != leader
    assert handover_s <= 10
    assert len(per_recipient) == 2000 and set(per_recipient.values()) == {1}
    assert len(started) == 1
