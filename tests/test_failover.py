"""Redis Sentinel failover under load, with the settings a user gets.

A master, two replicas and three Sentinels (from the shipped deploy/sentinel.conf)
on loopback; workers, beat and the HTTP service on ``REDIS_URL=sentinel://...``. The
master is SIGKILLed in the middle of a 3,000-job run. The promise is checked as in the
fault suite (every acknowledged job settles, nothing sent twice outside the counted
ambiguous sends) and across the failover: sends resume within 30 s of the master's death
and no number is sent faster than its limit. docs/reliability.md quotes the figures.
"""

from __future__ import annotations

import collections
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests

from dispatcher.errors import StoreUnavailable
from tests.support.cli import run_cli
from tests.support.data import BEARER
from tests.support.processes import SandboxProcess, SentinelRedis, most_in_window
from tests.support.producers import Producers
from tests.support.stack import Stack
from tests.support.waiting import wait_until
from tests.test_faults import (
    KEYS,
    NUMBERS,
    SANDBOX,
    SENT,
    Supervisor,
    both_lanes,
    check_no_duplicate_outside_ambiguous,
    stats,
    wait_terminal,
)

pytestmark = [pytest.mark.faults, pytest.mark.timeout(600)]

RESUME_WITHIN_S = 30.0


@pytest.fixture
def sentinel_stack(tmp_path: Path) -> Iterator[Stack]:
    config = tmp_path / "sandbox.json"
    config.write_text(json.dumps(SANDBOX))
    group = SentinelRedis.start(tmp_path / "redis")
    sandbox = SandboxProcess.start("--config", str(config), "--no-window", "--seed", "7")
    stack = Stack(group, sandbox, tmp_path, waapi_keys=json.dumps(KEYS))  # type: ignore[arg-type]
    sandbox.faults(latency_ms=20, latency_jitter_ms=5)
    try:
        yield stack
    finally:
        stack.stop()
        sandbox.stop()
        group.stop()


def test_a_master_killed_mid_run_fails_over_and_keeps_every_acknowledged_job(
    sentinel_stack: Stack,
) -> None:
    """SIGKILL the master while 3,000 jobs are being sent and producers (Python and HTTP)
    keep enqueueing: the Sentinels promote the replica, every component follows it, sends
    resume within 30 s, every acknowledged job settles, none is sent twice outside the
    counted ambiguous sends, and no number goes over its rate."""
    stack = sentinel_stack
    group: SentinelRedis = stack.redis  # type: ignore[assignment]
    url = stack.start_serve()
    workers = Supervisor(stack, 2)
    stack.start_beat()
    lines = both_lanes(2400, prefix="1560")
    lanes = {line["to"]: line["lane"] for line in lines}
    producers = Producers(stack, url, NUMBERS[:2], ("1561", "1562"), count=300, interval_s=0.02)
    try:
        with stack.dispatcher() as dispatcher:
            ids = [r.job_id for r in dispatcher.send_many(lines)]
        producers.start()
        sent_before = wait_until_sent(stack, 500)
        old_master = group.master_port()
        group.kill_master()
        killed_at = time.time()
        wait_until(lambda: group.master_port() != old_master, timeout_s=60, interval_s=0.1)
        promoted_at = time.time()
        promoted_s = promoted_at - killed_at
        producers.join(120)
    finally:
        producers.stop()
    ids += producers.accepted
    lanes |= producers.lanes
    new_master = group.master_port()
    client = redis.Redis(port=new_master)
    try:
        states = wait_terminal(client, ids, timeout_s=180)
        settled_s = time.time() - killed_at
        workers.stop()
        ambiguous, duplicated = check_no_duplicate_outside_ambiguous(stack, client, ids, lanes)
        counters = stats(client)
    finally:
        client.close()
    sent = stack.sandbox.sent()
    resumed_s = resumed_after(killed_at, promoted_at, [float(item["received"]) for item in sent])
    per_number: dict[str, list[float]] = collections.defaultdict(list)
    for item in sent:
        per_number[item["from"]].append(float(item["received"]))
    # Counted where the gateway (Meta) counts, in windows of 5 s: the limiter admits a
    # number's usable rate (its rate less NUMBER_HEADROOM) and a small burst, and the
    # headroom absorbs the jitter between admission and arrival. A limiter that forgot
    # its state in the failover would add up to a second's worth on top.
    window_s = 5.0
    busiest = {n: most_in_window(times, window_s) for n, times in per_number.items()}
    limit = stack.settings().number_per_second * window_s
    by_state = collections.Counter(states.values())
    print(
        f"\nSentinel failover (master :{old_master} SIGKILLed after {sent_before} sends, "
        f"replica :{new_master} promoted {promoted_s:.1f} s after): {len(ids)} acknowledged "
        f"jobs ({len(producers.accepted)} enqueued one by one around it, refused while "
        f"failing over {dict(producers.refused)}); sends resumed {resumed_s:.1f} s after the "
        f"kill, all settled {settled_s:.0f} s after it ({dict(by_state)}); ambiguous "
        f"{len(ambiguous)}, sent twice {len(duplicated)}; most sends per number in "
        f"{window_s:.0f} s {busiest} (limit {limit:.0f}); worker restarts {workers.restarts}; "
        f"claims given back {counters.get('claims_returned', 0)}"
    )
    listed = run_cli("jobs", "--limit", "3", env=stack.env)  # the CLI finds the new master
    assert listed.returncode == 0 and listed.stdout.count("sent") >= 3, listed.stderr
    assert new_master != old_master
    assert by_state.keys() <= SENT | {"unknown"}  # none missing: no acknowledged job lost
    assert resumed_s <= RESUME_WITHIN_S
    assert len(producers.accepted) == 600  # the producers went on through the failover
    assert all(most <= limit for most in busiest.values())


def resumed_after(killed_at: float, promoted_at: float, arrivals: list[float]) -> float:
    """Seconds from the kill to the first call that reached the gateway once a new
    master was named: nothing can be claimed before that (calls arriving in between were
    admitted before the kill, their workers waiting out their slot)."""
    later = [t for t in arrivals if t >= promoted_at]
    return min(later) - killed_at if later else float("inf")


def wait_until_sent(stack: Stack, count: int) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        sent = len(stack.sandbox.sent())
        if sent >= count:
            return sent
        time.sleep(0.2)
    raise AssertionError(f"fewer than {count} sends within 60 s\n{stack.log()[-3000:]}")


def test_a_write_counts_only_once_a_replica_has_it(sentinel_stack: Stack) -> None:
    """With the replicas frozen (SIGSTOP: still connected, answering nothing), an enqueue
    is refused after REDIS_CONFIRM_TIMEOUT_MS (Python StoreUnavailable, HTTP 503 with
    Retry-After) instead of acknowledged, and a due job is not sent: its claim is not on
    a replica yet. Thawed, the same enqueue is acknowledged and the job is sent."""
    stack = sentinel_stack
    group: SentinelRedis = stack.redis  # type: ignore[assignment]
    url = stack.start_serve()
    stack.start_worker()
    stack.start_beat()
    template = {"to": "+15630000001", "fromPhoneNo": NUMBERS[0], "name": "hello_world"}
    template["language"] = "en"
    with stack.dispatcher() as dispatcher:
        due = dispatcher.send_template(
            "+15630000002", NUMBERS[1], "hello_world", "en", not_before=time.time() + 3
        )
        for replica in group.replicas:
            replica.proc.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            # Both replicas are in sync as far as the Sentinels know: both must confirm.
            with pytest.raises(StoreUnavailable, match=r"0 of 2 replicas.*REDIS_CONFIRM_REPLICAS"):
                dispatcher.enqueue("cloud", "template", template, idempotency_key="k1")
            refused_s = time.monotonic() - started
            answer = requests.post(
                url + "/v1/whatsapp-api/messages/template",
                headers=BEARER["crm"],
                json={**template, "idempotencyKey": "k2"},
                timeout=10,
            )
            time.sleep(4)  # the held job is due, a worker has claimed it
            held = dispatcher.job(due)
            sent_while_frozen = len(stack.sandbox.sent())
        finally:
            for replica in group.replicas:
                replica.proc.send_signal(signal.SIGCONT)
        again = dispatcher.enqueue("cloud", "template", template, idempotency_key="k1")
        states = stack.wait_states(dispatcher, [due, again.job_id], timeout_s=60)
    assert 0.9 <= refused_s < 5
    assert answer.status_code == 503 and answer.headers["Retry-After"]
    assert held is not None and held.state not in SENT
    assert sent_while_frozen == 0
    assert set(states.values()) == {"sent"}
    print(f"\nreplica frozen: enqueue refused after {refused_s:.2f} s, due job held ({held.state})")


def test_a_demoted_master_answers_readonly_and_everyone_follows_the_new_one(
    sentinel_stack: Stack,
) -> None:
    """A failover that leaves the old master running (``SENTINEL FAILOVER``: an operator
    moving the master, or a partition healing) demotes it to a replica: connections still
    open to it get READONLY on their next write. Every component drops them and asks the
    Sentinels again; producers keep going and every acknowledged job is sent once."""
    stack = sentinel_stack
    group: SentinelRedis = stack.redis  # type: ignore[assignment]
    url = stack.start_serve()
    workers = Supervisor(stack, 1)
    stack.start_beat()
    producers = Producers(stack, url, NUMBERS[:2], ("1564", "1565"), count=150, interval_s=0.02)
    old_master = group.master_port()
    try:
        producers.start()
        wait_until(lambda: len(producers.accepted) >= 60, timeout_s=60)
        group.failover()
        moved_at = time.time()
        wait_until(lambda: group.master_port() != old_master, timeout_s=30, interval_s=0.1)
        promoted_at = time.time()
        producers.join(120)
    finally:
        producers.stop()
    new_master = group.master_port()
    with redis.Redis(port=new_master) as client:
        states = wait_terminal(client, producers.accepted, timeout_s=60)
        ambiguous, duplicated = check_no_duplicate_outside_ambiguous(
            stack, client, producers.accepted, producers.lanes
        )

    def role() -> str:
        with redis.Redis(port=old_master) as demoted:
            return str(demoted.info("replication")["role"])

    demoted = wait_until(lambda: role() == "slave", timeout_s=60, interval_s=0.5)
    workers.stop()
    arrivals = [float(item["received"]) for item in stack.sandbox.sent()]
    resumed_s = resumed_after(moved_at, promoted_at, arrivals)
    print(
        f"\nmanual failover (old master :{old_master} demoted to a replica): "
        f"{len(producers.accepted)} acknowledged, refused meanwhile {dict(producers.refused)}, "
        f"sends resumed {resumed_s:.1f} s after, {dict(collections.Counter(states.values()))}, "
        f"ambiguous {len(ambiguous)}, sent twice {len(duplicated)}, worker restarts "
        f"{workers.restarts}"
    )
    assert demoted
    assert len(producers.accepted) == 300
    assert set(states.values()) <= SENT
    assert resumed_s <= RESUME_WITHIN_S
