"""The fault suite: the promise measured under crashes, restarts, storms and outages,
with the settings a user gets. Only the fault itself is injected: every timeout,
threshold and policy is the shipped default (the sandbox gateway has 20 ms of latency,
and numbers the default 80 messages/s).

Each case starts its own Redis, sandbox gateway, HTTP service (for the gateway's signed
webhooks), worker and beat processes, checks the promise (nothing lost, nothing sent
twice outside the counted ambiguous sends, every outcome recorded, recovery within the
stated time) and prints its figures; docs/reliability.md quotes them. ``pytest -m faults -s``
runs these; the 10-minute outage is also marked ``long`` (``.ci/run`` runs it in its own
step).
"""

from __future__ import annotations

import collections
import contextlib
import json
import random
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from dispatcher.errors import StoreUnavailable
from dispatcher.ledger.states import TERMINAL_STATES
from tests.support.data import SANDBOX_KEYS
from tests.support.processes import SandboxProcess
from tests.support.producers import Producers
from tests.support.stack import Stack, own_stack
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.faults, pytest.mark.timeout(600)]

NUMBERS = ("+15550000001", "+15550000002", "+15550000003")
SENT = frozenset({"sent", "delivered", "read"})
KEYS = [{**SANDBOX_KEYS[0], "numbers": list(NUMBERS)}]
SANDBOX = {
    "keys": [{"key": "waapi_sandbox", "secret": "secr_sandbox", "numbers": list(NUMBERS)}],
    "templates": [{"name": "hello_world", "language": "en"}],
}


def template_line(n: int, lane: str, prefix: str = "1557") -> dict[str, Any]:
    return {
        "type": "template",
        "to": f"+{prefix}{n:07d}",
        "fromPhoneNo": NUMBERS[n % len(NUMBERS)],
        "name": "hello_world",
        "language": "en",
        "lane": lane,
    }


def both_lanes(count: int, prefix: str = "1557") -> list[dict[str, Any]]:
    return [template_line(n, "transactional" if n % 2 else "bulk", prefix) for n in range(count)]


@pytest.fixture
def cleanup() -> Iterator[contextlib.ExitStack]:
    with contextlib.ExitStack() as exits:
        yield exits


def fault_stack(
    cleanup: contextlib.ExitStack, tmp_path: Path, *redis_args: str, durable: bool = False
) -> Stack:
    """Its own Redis (as production runs it when ``durable``: AOF, everysec) and sandbox
    (three numbers, 20 ms), the settings a user gets; stopped when the test ends."""
    config = tmp_path / "sandbox.json"
    config.write_text(json.dumps(SANDBOX))
    if durable:
        redis_args = ("--appendonly", "yes", "--appendfsync", "everysec", *redis_args)
    stack = cleanup.enter_context(
        own_stack(
            tmp_path,
            "--config",
            str(config),
            "--no-window",
            "--seed",
            "7",
            redis_args=redis_args,
            waapi_keys=json.dumps(KEYS),
        )
    )
    stack.sandbox.faults(latency_ms=20, latency_jitter_ms=5)
    return stack


class Supervisor:
    """What compose's ``restart: unless-stopped`` or systemd does for a worker: start it
    again when it exits (killed by a test, or ended by kombu when Redis vanished)."""

    def __init__(self, stack: Stack, count: int, threads: int | None = None) -> None:
        self.stack = stack
        self.threads = threads
        self.restarts = 0
        self.procs = [stack.start_worker(threads=threads) for _ in range(count)]
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            with self._lock:
                for index, proc in enumerate(self.procs):
                    if proc.poll() is not None:
                        self.restarts += 1
                        self.procs[index] = self.stack.start_worker(threads=self.threads)

    def kill_one(self, rng: random.Random) -> None:
        with self._lock:
            victim = self.procs[rng.randrange(len(self.procs))]
        victim.send_signal(signal.SIGKILL)
        victim.wait()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def supervise(cleanup: contextlib.ExitStack, stack: Stack, count: int = 2) -> Supervisor:
    """Two workers under a supervisor that stops before the stack does."""
    supervisor = Supervisor(stack, count)
    cleanup.callback(supervisor.stop)
    return supervisor


def sends_per_recipient(stack: Stack) -> collections.Counter[str]:
    return collections.Counter(r["to"] for r in stack.sandbox.sent())


def states_of(client: redis.Redis, ids: list[str]) -> dict[str, str]:
    pipe = client.pipeline(transaction=False)
    for job_id in ids:
        pipe.hget(f"waapi:job:{job_id}", "state")
    return {j: (s.decode() if s else "missing") for j, s in zip(ids, pipe.execute(), strict=True)}


def wait_terminal(client: redis.Redis, ids: list[str], timeout_s: float) -> dict[str, str]:
    """Every job settled (TERMINAL_STATES, ``unknown`` included) within ``timeout_s``.
    Only the jobs not settled yet are read again (the test's own load stays small)."""
    found: dict[str, str] = dict.fromkeys(ids, "")

    def settled() -> bool:
        pending = [j for j, s in found.items() if s not in TERMINAL_STATES]
        found.update(states_of(client, pending))
        return all(s in TERMINAL_STATES for s in found.values())

    try:
        wait_until(settled, timeout_s=timeout_s, interval_s=0.5)
    except AssertionError:
        pending = collections.Counter(s for s in found.values() if s not in TERMINAL_STATES)
        raise AssertionError(f"not settled within {timeout_s:.0f} s: {dict(pending)}") from None
    return found


def stats(client: redis.Redis) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in client.hgetall("waapi:stats").items()}


def check_no_duplicate_outside_ambiguous(
    stack: Stack, client: redis.Redis, ids: list[str], lanes: dict[str, str]
) -> tuple[set[str], set[str]]:
    """The promise: a recipient sent more than once only where the send was ambiguous,
    at most once more per ambiguous send of its job, and only in the transactional lane
    (bulk holds, never resends blindly). Returns (ambiguous, sent twice) recipients."""
    pipe = client.pipeline(transaction=False)
    for job_id in ids:
        pipe.hmget(f"waapi:job:{job_id}", "to", "ambiguous")
    times_ambiguous = {to.decode(): int(amb or 0) for to, amb in pipe.execute()}
    ambiguous = {to for to, n in times_ambiguous.items() if n > 0}
    per_recipient = sends_per_recipient(stack)
    duplicated = {to for to, n in per_recipient.items() if n > 1}
    assert duplicated <= ambiguous
    assert all(lanes[to] == "transactional" for to in duplicated)
    assert all(n <= 1 + times_ambiguous[to] for to, n in per_recipient.items())
    return ambiguous, duplicated


def test_random_sigkills_during_3000_jobs_over_3_numbers_all_settle_within_180s(
    tmp_path: Path, cleanup: contextlib.ExitStack
) -> None:
    """3,000 jobs over three numbers, both lanes; for the first 40 s a random worker is
    SIGKILLed every 2-6 s (a supervisor restarts it, as compose would). Recovery is by
    liveness: a dead worker's claims and messages are back at work within seconds, so
    every job settles within 180 s of the start."""
    stack = fault_stack(cleanup, tmp_path)
    url = stack.start_serve()
    stack.sandbox.webhooks(url=url + "/v1/webhooks/waapi", statuses=["delivered"])
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    lines = both_lanes(3000)
    lanes = {line["to"]: line["lane"] for line in lines}
    with stack.dispatcher() as dispatcher:
        client = dispatcher.ledger.client
        ids = [r.job_id for r in dispatcher.send_many(lines)]
        started = time.monotonic()
        workers = supervise(cleanup, stack)
        stack.start_beat()
        kills = 0
        while time.monotonic() - started < 40:
            time.sleep(rng.uniform(2, 6))
            workers.kill_one(rng)
            kills += 1
        states = wait_terminal(client, ids, timeout_s=180 - (time.monotonic() - started))
        settled_s = time.monotonic() - started
        workers.stop()
        ambiguous, duplicated = check_no_duplicate_outside_ambiguous(stack, client, ids, lanes)
        counters = stats(client)
    by_state = collections.Counter(states.values())
    print(
        f"\nSIGKILL x{kills} (seed {seed}) during 3,000 jobs over 3 numbers: all settled in "
        f"{settled_s:.0f} s ({dict(by_state)}); dead workers found "
        f"{counters.get('workers_lost', 0)}, messages returned "
        f"{counters.get('messages_restored', 0)}, "
        f"claims never sent and queued again {counters.get('claims_returned', 0)}, ambiguous "
        f"{len(ambiguous)}, sent twice {len(duplicated)} (all transactional and ambiguous), "
        f"gateway calls {stack.sandbox.stats()['counters'].get('requests')}"
    )
    assert by_state.keys() <= SENT | {"unknown"}
    unknown_ids = [j for j, s in states.items() if s == "unknown"]
    unknown_to = {client.hget(f"waapi:job:{j}", "to") for j in unknown_ids}
    assert all(lanes[t.decode()] == "bulk" for t in unknown_to if t)  # only bulk holds
    assert set(sends_per_recipient(stack)) >= {to for to in lanes} - {
        t.decode() for t in unknown_to if t
    }  # nobody missing but the held ones
    assert settled_s <= 180


def test_a_redis_crash_after_sends_are_in_flight_settles_every_acknowledged_job_in_60s(
    tmp_path: Path, cleanup: contextlib.ExitStack
) -> None:
    """Redis (AOF, appendfsync everysec) is SIGKILLed while workers are sending and back
    2 s later. Every job whose enqueue was acknowledged settles within 60 s of Redis
    returning: messages lost with a BRPOP's reply are published again, claims whose
    answer was lost are given back, workers kombu ended are restarted."""
    stack = fault_stack(cleanup, tmp_path, durable=True)
    lines = both_lanes(2000, prefix="1558")
    lanes = {line["to"]: line["lane"] for line in lines}
    produced: list[str] = []
    stop = threading.Event()

    def produce() -> None:  # a producer goes on enqueueing one job at a time
        with stack.dispatcher() as dispatcher:
            n = 0
            while not stop.is_set():
                n += 1
                to = f"+1551{n:07d}"
                time.sleep(0.01)
                try:
                    produced.append(dispatcher.send_template(to, NUMBERS[2], "hello_world", "en"))
                except StoreUnavailable:
                    time.sleep(0.05)
                    continue
                lanes[to] = "transactional"

    with stack.dispatcher() as dispatcher:
        ids = [r.job_id for r in dispatcher.send_many(lines)]
        workers = supervise(cleanup, stack)
        stack.start_beat()
        producer = threading.Thread(target=produce)
        producer.start()
        wait_until(lambda: len(stack.sandbox.sent()) >= 500, timeout_s=60)
        stack.redis.restart(down_s=2, kill=True)
        returned = time.monotonic()
        time.sleep(2)
        stop.set()
        producer.join(30)
        ids += produced
        client = redis.Redis(port=stack.redis.port)
        states = wait_terminal(client, ids, timeout_s=60)
        settled_s = time.monotonic() - returned
        workers.stop()
        ambiguous, duplicated = check_no_duplicate_outside_ambiguous(stack, client, ids, lanes)
        counters = stats(client)
        client.close()
    by_state = collections.Counter(states.values())
    print(
        f"\nRedis SIGKILL mid-run ({len(ids)} acknowledged jobs, {len(produced)} enqueued one by "
        f"one around the crash): all settled {settled_s:.1f} s after "
        f"Redis returned ({dict(by_state)}); lost messages published again "
        f"{counters.get('republished', 0)}, messages returned "
        f"{counters.get('messages_restored', 0)}, "
        f"ambiguous {len(ambiguous)}, sent twice {len(duplicated)}, worker restarts "
        f"{workers.restarts}"
    )
    assert by_state.keys() <= SENT | {"unknown"}  # none missing: no acknowledged job lost


def test_redis_restart_under_producers_keeps_every_acknowledged_job(
    tmp_path: Path, cleanup: contextlib.ExitStack
) -> None:
    """Redis is shut down for 3 s while producers keep enqueueing through Python and
    HTTP. Every enqueue that returned success ends sent; refusals were loud (an error,
    HTTP 503); workers, beat and the HTTP service reconnect on their own."""
    stack = fault_stack(cleanup, tmp_path, durable=True)
    url = stack.start_serve()
    workers = supervise(cleanup, stack)
    stack.start_beat()
    producers = Producers(stack, url, NUMBERS[:2], ("1559", "1556")).start()
    try:
        time.sleep(3)
        before = len(producers.accepted)
        stack.redis.restart(down_s=3)
        returned = time.monotonic()
        time.sleep(3)
    finally:
        producers.stop()
    accepted, refused = producers.accepted, producers.refused
    ready = wait_until(lambda: requests.get(url + "/readyz", timeout=5).ok, timeout_s=30)
    client = redis.Redis(port=stack.redis.port)
    states = wait_terminal(client, accepted, timeout_s=60)
    settled_s = time.monotonic() - returned
    per_recipient = sends_per_recipient(stack)
    client.close()
    workers.stop()
    print(
        f"\nRedis restart (3 s down) under producers: {len(accepted)} acknowledged ({before} "
        f"before), refused while down {dict(refused)}, all settled {settled_s:.0f} s after "
        f"Redis returned ({dict(collections.Counter(states.values()))}), sent twice "
        f"{sum(1 for n in per_recipient.values() if n > 1)}, worker restarts {workers.restarts}"
    )
    assert ready
    assert set(states.values()) <= SENT  # every acknowledged job was sent
    assert len(accepted) > before > 0  # the producers went on after the restart
    assert refused  # the restart was seen, and refused loudly rather than lost


def sent_rate(items: list[dict[str, Any]]) -> float:
    """Messages per second the gateway accepted, first to last (its own clock)."""
    times = sorted(float(i["received"]) for i in items)
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0


def test_a_flapping_gateway_keeps_sending_at_what_it_takes(
    tmp_path: Path, cleanup: contextlib.ExitStack
) -> None:
    """2,000 jobs on a healthy gateway measure the healthy rate; then the gateway answers
    30% of calls 503 and 5% 429 (Retry-After 1 s) for up to 300 s, and 2,000 jobs go
    through it. All are sent, none dead, with no more gateway calls per message than the
    failures themselves cost (1 / 0.65 = 1.54): the throttle holds nothing back from a
    gateway that takes 65% of calls. The rates are printed (docs/reliability.md quotes them;
    a speed target is not asserted in a timed test)."""
    stack = fault_stack(cleanup, tmp_path)
    with stack.dispatcher() as dispatcher:
        client = dispatcher.ledger.client
        supervise(cleanup, stack)
        stack.start_beat()
        healthy = [r.job_id for r in dispatcher.send_many(both_lanes(2000, prefix="1553"))]
        wait_terminal(client, healthy, timeout_s=120)
        healthy_items = stack.sandbox.sent()
        healthy_per_s = sent_rate(healthy_items)
        before = stack.sandbox.stats()["counters"]
        stack.sandbox.faults(rate_5xx=0.30, rate_429=0.05, retry_after_s=1)
        storm_started = time.monotonic()
        lines = both_lanes(2000, prefix="1554")
        ids = [r.job_id for r in dispatcher.send_many(lines)]
        states = wait_terminal(client, ids, timeout_s=300)
        storm_s = time.monotonic() - storm_started
        stack.sandbox.faults(rate_5xx=0, rate_429=0)
        after = stack.sandbox.stats()["counters"]
        counters = stats(client)
        waits = client.hgetall("waapi:m:waits")
    storm_items = stack.sandbox.sent()[len(healthy_items) :]
    storm_per_s = sent_rate(storm_items)
    calls = after["requests"] - before["requests"]
    throttled = sum(int(v) for k, v in waits.items() if k.endswith(b"|throttle"))
    print(
        f"\nflapping gateway (30% 503, 5% 429): healthy {healthy_per_s:.0f} msg/s; during "
        f"the storm {storm_per_s:.0f} msg/s ({storm_per_s / healthy_per_s:.2f}x), 2,000 sent "
        f"in {storm_s:.0f} s with {calls} calls ({calls / 2000:.2f} per message); faults "
        f"{ {k: after[k] - before.get(k, 0) for k in after if k.startswith('fault_')} }; "
        f"throttled admissions {throttled}, ambiguous {counters.get('ambiguous', 0)}"
    )
    assert set(states.values()) <= SENT
    assert calls / 2000 <= 1.6


@pytest.mark.long
@pytest.mark.timeout(1800)
def test_a_10_minute_gateway_outage_kills_no_job(
    tmp_path: Path, cleanup: contextlib.ExitStack
) -> None:
    """The gateway refuses connections for 10 minutes (its process is gone) while 600
    jobs wait. The throttle probes it gently instead of spending every job's attempts;
    when it is back everything is sent, and no job is dead (retries are budgeted in time,
    and a day is the transactional lane's maximum age)."""
    stack = fault_stack(cleanup, tmp_path)
    port = stack.sandbox.port
    stack.sandbox.stop()
    lines = both_lanes(600, prefix="1552")
    with stack.dispatcher() as dispatcher:
        client = dispatcher.ledger.client
        ids = [r.job_id for r in dispatcher.send_many(lines)]
        supervise(cleanup, stack)
        stack.start_beat()
        time.sleep(600)
        during = collections.Counter(states_of(client, ids).values())
        pipe = client.pipeline(transaction=False)
        for job_id in ids:
            pipe.hget(f"waapi:job:{job_id}", "att")
        attempts = [int(a or 0) for a in pipe.execute()]
        config = tmp_path / "sandbox.json"
        stack.sandbox = SandboxProcess.start("--config", str(config), "--no-window", port=port)
        stack.sandbox.faults(latency_ms=20, latency_jitter_ms=5)
        back = time.monotonic()
        states = wait_terminal(client, ids, timeout_s=600)
        settled_s = time.monotonic() - back
        waits = client.hgetall("waapi:m:waits")
    throttled = sum(int(v) for k, v in waits.items() if k.endswith(b"|throttle"))
    by_state = collections.Counter(states.values())
    print(
        f"\n10-minute outage (connection refused), 600 jobs: during it {dict(during)}; "
        f"attempts per job max {max(attempts)}, mean {sum(attempts) / len(attempts):.1f}; "
        f"throttled admissions {throttled}; all settled {settled_s:.0f} s after the gateway "
        f"returned ({dict(by_state)})"
    )
    assert set(states.values()) <= SENT
    assert "dead" not in during
    stack.sandbox.stop()


def test_a_slow_gateway_times_nothing_out_and_keeps_transactional_latency_bounded(
    tmp_path: Path, cleanup: contextlib.ExitStack
) -> None:
    """Every call takes 2 s (+-0.2). With 400 bulk jobs queued, 40 transactional jobs
    enqueued one by one still go out within a few gateway latencies, nothing times out
    or is sent twice, and the queues drain."""
    stack = fault_stack(cleanup, tmp_path)
    stack.sandbox.faults(latency_ms=2000, latency_jitter_ms=200)
    bulk_lines = [template_line(n, "bulk", prefix="1556") for n in range(400)]
    with stack.dispatcher() as dispatcher:
        bulk = [r.job_id for r in dispatcher.send_many(bulk_lines)]
        stack.start_worker()
        stack.start_worker()
        stack.start_beat()
        # Latency behind a backlog, not a worker's start: measured once both are up (and
        # already sending the bulk jobs).
        wait_until(lambda: dispatcher.ledger.client.zcard("waapi:workers") >= 2, timeout_s=60)
        started = time.monotonic()
        transactional = []
        for n in range(40):
            transactional.append(
                dispatcher.send_template(f"+1555{n:07d}", NUMBERS[n % 3], "hello_world", "en")
            )
            time.sleep(0.1)
        stack.wait_states(dispatcher, transactional + bulk, timeout_s=180)
        drained_s = time.monotonic() - started
        records = [dispatcher.job(i) for i in transactional + bulk]
        pipe = dispatcher.ledger.client.pipeline(transaction=False)
        for job_id in transactional:
            pipe.hmget(f"waapi:job:{job_id}", "created", "t_sent")
        times = [(int(c), int(s)) for c, s in pipe.execute()]
    latencies_s = sorted((sent - created) / 1000 for created, sent in times)
    per_recipient = sends_per_recipient(stack)
    print(
        f"\nslow gateway (2 s): 400 bulk + 40 transactional drained in {drained_s:.1f} s; "
        f"transactional enqueue-to-sent p50 {latencies_s[len(latencies_s) // 2]:.1f} s, "
        f"max {latencies_s[-1]:.1f} s; attempts > 1: "
        f"{sum(1 for r in records if r and r.attempts > 1)}"
    )
    assert all(r is not None and r.state == "sent" and r.attempts == 1 for r in records)
    assert not any(r.ambiguous for r in records if r)
    assert max(per_recipient.values()) == 1 and len(per_recipient) == 440
    assert latencies_s[-1] < 3 * 2.2  # a few gateway latencies, not the bulk backlog's length


def test_a_100k_backlog_of_any_age_holds_one_message_per_job(
    tmp_path: Path, cleanup: contextlib.ExitStack
) -> None:
    """100,000 bulk jobs wait on a number nobody serves (a throttled number, a paused
    campaign) while recovery passes run once a second for 30 simulated minutes (the old
    sweep re-published anything queued for 15 minutes): every queued job still has
    exactly one message, and Redis holds no more than it did for the fresh backlog."""
    from dispatcher.ledger.jobs import Ledger
    from tests.support.waiting import FakeClock

    stack = fault_stack(cleanup, tmp_path)
    settings = stack.settings()
    client = redis.Redis(port=stack.redis.port)
    clock = FakeClock(time.time())
    ledger = Ledger(client, settings, clock)
    with stack.dispatcher() as dispatcher:
        lines = [template_line(n * 3, "bulk", prefix="1550") for n in range(100_000)]
        for start in range(0, len(lines), 5000):
            dispatcher.send_many(lines[start : start + 5000])
    queue = "waapi.cloud.15550000001.bulk"
    fresh = int(client.info("memory")["used_memory"])
    for second in range(1800):  # a pass a second; the publication sweep every 5 s
        clock.advance(1)
        if second % 5 == 0:
            client.delete("waapi:swept")  # (its 5 s guard runs on Redis's real clock)
        ledger.recover()
    aged = int(client.info("memory")["used_memory"])
    carried = collections.Counter()
    for raw in client.lrange(queue, 0, -1):
        body = json.loads(json.loads(raw)["body"])
        for job_id in body[1].get("jobs") or [body[1]["job_id"]]:
            carried[job_id] += 1
    queued = sum(1 for s in states_of(client, list(carried)).values() if s == "queued")
    counters = stats(client)
    client.close()
    print(
        f"\n100k backlog after 30 simulated minutes of recovery passes: {len(carried)} jobs, "
        f"{sum(carried.values())} carried by the queue's messages, {queued} queued, "
        f"republished {counters.get('republished', 0)}; Redis {fresh / 100_000:.0f} B per job "
        f"fresh, {aged / 100_000:.0f} B aged ({aged / fresh:.3f}x)"
    )
    assert len(carried) == 100_000 and set(carried.values()) == {1}  # one message per job
    assert queued == 100_000
    assert counters.get("republished", 0) == 0
    assert aged <= 1.1 * fresh
