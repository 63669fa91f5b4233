"""The fault suite: the promises of DESIGN.md measured under crashes, restarts and storms.

Each case starts its own Redis, sandbox gateway, HTTP service (for the gateway's signed
webhooks), worker and beat processes, injects one kind of trouble into a run, checks the
promise (nothing lost, nothing sent twice outside the ambiguous window, every outcome
recorded) and prints its figures; RELIABILITY.md quotes them. Run just these with
``pytest -m faults -s``.
"""

from __future__ import annotations

import collections
import contextlib
import random
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from dispatcher.errors import StoreUnavailable
from tests.support import BEARER, SandboxProcess, Stack, own_stack, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]

NUMBERS = ("+15550000001", "+15550000002")
SENT = frozenset({"sent", "delivered", "read"})


def template_line(n: int, lane: str, prefix: str = "1557") -> dict[str, Any]:
    return {
        "type": "template",
        "to": f"+{prefix}{n:07d}",
        "fromPhoneNo": NUMBERS[n % 2],
        "name": "hello_world",
        "language": "en",
        "priority": lane,
    }


@pytest.fixture
def cleanup() -> Iterator[contextlib.ExitStack]:
    with contextlib.ExitStack() as exits:
        yield exits


def make_stack(
    cleanup: contextlib.ExitStack, tmp_path: Path, *redis_args: str, **settings: Any
) -> Stack:
    """Its own Redis and sandbox, stopped when the test ends."""
    return cleanup.enter_context(
        own_stack(tmp_path, "--no-window", "--seed", "7", redis_args=redis_args, **settings)
    )


def durable_stack(cleanup: contextlib.ExitStack, tmp_path: Path) -> Stack:
    """Redis as production runs it (AOF, appendfsync everysec), a 10 ms gateway, and a
    job lease longer than the outages the tests cause (60 s by default in production)."""
    stack = make_stack(
        cleanup,
        tmp_path,
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        job_lease_s=20,
        number_per_second=1000,
    )
    stack.sandbox.faults(latency_ms=10, latency_jitter_ms=2)
    return stack


class Supervisor:
    """What compose's ``restart: unless-stopped`` or systemd does for a worker: start it
    again when it exits. Needed because kombu's Redis transport can end a worker with
    "Unrecoverable error: AttributeError ... 'hostname'" when Redis vanishes abruptly
    (seen in this suite); the restarts are counted and printed."""

    def __init__(self, stack: Stack, count: int, threads: int = 16) -> None:
        self.stack = stack
        self.threads = threads
        self.restarts = 0
        self.procs = [stack.start_worker(threads=threads) for _ in range(count)]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            for index, proc in enumerate(self.procs):
                if proc.poll() is not None:
                    self.restarts += 1
                    self.procs[index] = self.stack.start_worker(threads=self.threads)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def sends_per_recipient(stack: Stack) -> collections.Counter[str]:
    return collections.Counter(r["to"] for r in stack.sandbox.sent())


def test_random_sigkills_during_5000_jobs_lose_nothing(
    tmp_path: Path, cleanup: contextlib.ExitStack
) -> None:
    """Three workers SIGKILLed at random moments of a 5,000-job run (half transactional,
    half bulk); a replacement starts each time. Transactional jobs caught mid-call are
    resent (a duplicate is possible only among them); bulk ones are held as ``unknown``
    and settled by the gateway's webhook, or resent when none comes."""
    stack = make_stack(
        cleanup, tmp_path, unknown_recheck_s=8, limiter_max_sleep_s=2, number_per_second=1000
    )
    stack.sandbox.faults(latency_ms=20, latency_jitter_ms=5)
    url = stack.start_serve()
    stack.sandbox.webhooks(url=url + "/v1/webhooks/waapi", statuses=["delivered"])
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    lines = [template_line(n, "transactional" if n % 2 else "bulk") for n in range(5000)]
    with stack.dispatcher() as dispatcher:
        ids = [r.job_id for r in dispatcher.send_many(lines)]
        lanes = {line["to"]: line["priority"] for line in lines}
        workers = [stack.start_worker(threads=16), stack.start_worker(threads=16)]
        stack.start_beat()
        kill_at = sorted(rng.sample(range(400, 4000), 3))
        in_flight_at_kills = []
        for threshold in kill_at:
            wait_until(lambda t=threshold: len(stack.sandbox.sent()) >= t, timeout_s=120)
            victim = workers.pop(rng.randrange(len(workers)))
            time.sleep(rng.uniform(0, 0.2))
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            in_flight_at_kills.append(sum(1 for _ in dispatcher.jobs(state="sending", limit=5000)))
            workers.append(stack.start_worker(threads=16))
        states = stack.wait_states(dispatcher, ids, timeout_s=180, settled=frozenset({"delivered"}))
        records = [dispatcher.job(i) for i in ids]

    per_recipient = sends_per_recipient(stack)
    ambiguous = {r.to for r in records if r and r.ambiguous}
    duplicated = {to for to, n in per_recipient.items() if n > 1}
    by_lane = collections.Counter(lanes[to] for to in ambiguous)
    print(
        f"\nSIGKILL x3 (seed {seed}, at {kill_at} sent): jobs 5000, lost 0, "
        f"in flight at the kills {in_flight_at_kills}, ambiguous {len(ambiguous)} "
        f"(transactional {by_lane['transactional']}, bulk {by_lane['bulk']}), "
        f"sent twice {len(duplicated)}, gateway calls {stack.sandbox.stats()['counters']}"
    )
    assert set(states.values()) == {"delivered"}  # every job sent, confirmed by the gateway
    assert set(per_recipient) == set(lanes)  # nobody missing
    assert duplicated <= ambiguous  # a duplicate only where the send was ambiguous
    assert all(lanes[to] == "transactional" for to in duplicated)  # bulk holds, never resends
    assert max(per_recipient.values()) <= 2


def test_redis_restart_mid_run_keeps_every_acknowledged_job(
    tmp_path: Path, cleanup: contextlib.ExitStack
) -> None:
    """Redis (AOF, appendfsync everysec) is shut down for 3 s in the middle of a run while
    producers keep enqueueing through Python and HTTP. Every enqueue that returned
    success ends sent; workers, beat and the HTTP service reconnect on their own."""
    stack = durable_stack(cleanup, tmp_path)
    url = stack.start_serve()
    workers = Supervisor(stack, 2)
    stack.start_beat()
    accepted: list[str] = []
    refused = collections.Counter[str]()
    stop = threading.Event()

    def produce_python() -> None:
        with stack.dispatcher() as dispatcher:
            n = 0
            while not stop.is_set():
                n += 1
                time.sleep(0.005)  # a busy service, not a flood: the drain stays short
                try:
                    accepted.append(
                        dispatcher.send_template(f"+1558{n:07d}", NUMBERS[0], "hello_world", "en")
                    )
                except StoreUnavailable:
                    refused["python"] += 1
                    time.sleep(0.05)

    def produce_http() -> None:
        n = 0
        with requests.Session() as session:
            while not stop.is_set():
                n += 1
                time.sleep(0.005)
                try:
                    answer = session.post(
                        url + "/v1/whatsapp-api/messages/template",
                        headers=BEARER["crm"],
                        json={
                            "to": f"+1559{n:07d}",
                            "fromPhoneNo": NUMBERS[1],
                            "name": "hello_world",
                            "language": "en",
                        },
                        timeout=5,
                    )
                except requests.RequestException:
                    refused["http"] += 1
                    continue
                if answer.status_code == 202:
                    accepted.append(answer.json()["data"]["jobId"])
                else:
                    refused[f"http {answer.status_code}"] += 1
                    time.sleep(0.05)

    producers = [threading.Thread(target=produce_python), threading.Thread(target=produce_http)]
    for thread in producers:
        thread.start()
    try:
        time.sleep(3)
        before = len(accepted)
        stack.redis.restart(down_s=3)
        time.sleep(3)
    finally:
        stop.set()
        for thread in producers:
            thread.join(30)
    ready = wait_until(lambda: requests.get(url + "/readyz", timeout=5).ok, timeout_s=30)
    with stack.dispatcher() as dispatcher:
        states = stack.wait_states(dispatcher, accepted, timeout_s=120)
        records = [dispatcher.job(i) for i in accepted]
    per_recipient = sends_per_recipient(stack)
    duplicated = {to for to, n in per_recipient.items() if n > 1}
    ambiguous = {r.to for r in records if r and r.ambiguous}
    print(
        f"\nRedis restart (3 s down): enqueues accepted {len(accepted)} ({before} before the "
        f"restart), refused while down {dict(refused)}, ended "
        f"{dict(collections.Counter(states.values()))}, ambiguous {len(ambiguous)}, "
        f"sent twice {len(duplicated)}, worker restarts {workers.restarts}"
    )
    workers.stop()
    assert ready
    assert duplicated <= ambiguous
    assert set(states.values()) <= SENT  # every acknowledged job was sent
    assert len(accepted) > before > 0  # the producers went on after the restart
    assert refused  # the restart was seen, and refused loudly rather than lost


def test_a_redis_crash_with_everysec_loses_at_most_the_last_second(
    tmp_path: Path, cleanup: contextlib.ExitStack
) -> None:
    """Redis is SIGKILLed (no clean shutdown) mid-run. With ``appendfsync everysec`` Redis
    write()s the AOF on every event loop turn and fsyncs once a second, so a crash of the
    process loses nothing the kernel holds; only a crash of the machine can lose about the
    last second. Bounded here: any acknowledged job that is lost was enqueued within 2 s
    of the crash, and every other one ends sent."""
    stack = durable_stack(cleanup, tmp_path)
    workers = Supervisor(stack, 1)
    stack.start_beat()
    accepted: list[tuple[float, str]] = []
    stop = threading.Event()

    def produce() -> None:
        with stack.dispatcher() as dispatcher:
            n = 0
            while not stop.is_set():
                n += 1
                time.sleep(0.004)
                try:
                    job = dispatcher.send_template(f"+1554{n:07d}", NUMBERS[0], "hello_world", "en")
                except StoreUnavailable:
                    time.sleep(0.05)
                    continue
                accepted.append((time.monotonic(), job))

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        time.sleep(3)
        crashed_at = time.monotonic()
        stack.redis.restart(down_s=1, kill=True)
        time.sleep(2)
    finally:
        stop.set()
        producer.join(30)
    with stack.dispatcher() as dispatcher:
        client = dispatcher.ledger.client
        missing = [(t, j) for t, j in accepted if not client.exists(f"waapi:job:{j}")]
        kept = [j for t, j in accepted if client.exists(f"waapi:job:{j}")]
        states = stack.wait_states(dispatcher, kept, timeout_s=120)
    before_crash = [t for t, _ in accepted if t < crashed_at]
    lost_window_s = max((crashed_at - t for t, _ in missing), default=0.0)
    per_recipient = sends_per_recipient(stack)
    print(
        f"\nRedis SIGKILL (everysec): acknowledged {len(accepted)} ({len(before_crash)} before "
        f"the crash), lost {len(missing)} (the oldest enqueued {lost_window_s:.2f} s before the "
        f"crash), the rest ended {dict(collections.Counter(states.values()))}, sent twice "
        f"{sum(1 for n in per_recipient.values() if n > 1)}, worker restarts {workers.restarts}"
    )
    workers.stop()
    assert all(crashed_at - t <= 2.0 for t, _ in missing)  # only the last second or so
    assert set(states.values()) <= SENT


class RequestRate:
    """Samples the sandbox's request counter so a test can see the send rate over time."""

    def __init__(self, sandbox: SandboxProcess, every_s: float = 0.25) -> None:
        self.samples: list[tuple[float, int]] = []
        self._sandbox = sandbox
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            counters = self._sandbox.stats()["counters"]
            self.samples.append((time.monotonic(), counters.get("requests", 0)))
            self._stop.wait(self._every_s)

    def per_s(self, start: float, end: float) -> float:
        """Requests per second between two moments (monotonic)."""
        inside = [(t, n) for t, n in self.samples if start <= t <= end]
        if len(inside) < 2:
            return 0.0
        (t0, n0), (t1, n1) = inside[0], inside[-1]
        return (n1 - n0) / (t1 - t0)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def ledger_times_ms(stack: Stack, ids: list[str], state: str) -> list[tuple[int, int]]:
    """(created, reached ``state``) in ms for each job, from the ledger's hashes."""
    with stack.dispatcher() as dispatcher:
        pipe = dispatcher.ledger.client.pipeline(transaction=False)
        for job_id in ids:
            pipe.hmget(f"waapi:job:{job_id}", "created", f"t_{state}")
        return [(int(c), int(s)) for c, s in pipe.execute()]


def test_a_gateway_storm_ends_sent_with_few_extra_calls_and_visible_backoff(
    tmp_path: Path, cleanup: contextlib.ExitStack
) -> None:
    """For 6 s of a 2,000-job run the gateway answers 30% 503, resets 3%, hangs past the
    read timeout 2%, loses 2% of answers after accepting, and starts with a burst of 30
    429s with Retry-After. Transactional jobs end sent (a duplicate only among the
    ambiguous); bulk jobs end sent or held ``unknown``; the circuit breaker keeps the
    calls per message low and slows the send rate during the storm."""
    stack = make_stack(
        cleanup, tmp_path, waapi_read_timeout_s=1, unknown_recheck_s=0, number_per_second=1000
    )
    stack.sandbox.faults(latency_ms=5, latency_jitter_ms=2)
    lines = [template_line(n, "bulk" if n % 4 == 0 else "transactional") for n in range(2000)]
    lanes = {line["to"]: line["priority"] for line in lines}
    with stack.dispatcher() as dispatcher:
        ids = [r.job_id for r in dispatcher.send_many(lines)]
        rate = RequestRate(stack.sandbox)
        stack.start_worker(threads=16)
        stack.start_worker(threads=16)
        stack.start_beat()
        wait_until(lambda: len(stack.sandbox.sent()) >= 300, timeout_s=60)
        calm = time.monotonic()
        storm = {
            "rate_5xx": 0.3,
            "rate_reset": 0.03,
            "rate_timeout": 0.02,
            "rate_lost_response": 0.02,
            "hang_s": 3,
            "burst_429": 30,
            "retry_after_s": 1,
        }
        stack.sandbox.faults(**storm)
        storm_start = time.monotonic()
        time.sleep(6)
        stack.sandbox.faults(
            rate_5xx=0, rate_reset=0, rate_timeout=0, rate_lost_response=0, burst_429=0
        )
        storm_end = time.monotonic()
        states = stack.wait_states(dispatcher, ids, timeout_s=120)
        records = [dispatcher.job(i) for i in ids]
        rate.stop()

    counters = stack.sandbox.stats()["counters"]
    calls_per_message = counters["requests"] / len(ids)
    per_recipient = sends_per_recipient(stack)
    duplicated = {to for to, n in per_recipient.items() if n > 1}
    ambiguous = {r.to for r in records if r and r.ambiguous}
    before_per_s = rate.per_s(calm - 1, calm)
    during_per_s = rate.per_s(storm_start + 0.5, storm_end)
    by_state = collections.Counter((lanes[r.to], r.state) for r in records if r)
    print(
        f"\nstorm (6 s): jobs 2000, gateway calls {counters['requests']} "
        f"({calls_per_message:.2f} per message), faults "
        f"{ {k: v for k, v in counters.items() if k.startswith('fault_')} }, requests/s before "
        f"{before_per_s:.0f}, during {during_per_s:.0f}, ended {dict(by_state)}, ambiguous "
        f"{len(ambiguous)}, sent twice {len(duplicated)}"
    )
    assert {s for i, s in states.items()} <= SENT | {"unknown"}
    assert all(
        r.state in SENT for r in records if r and lanes[r.to] == "transactional"
    )  # the transactional lane resends what may have been lost
    assert all(r.ambiguous for r in records if r and r.state == "unknown")
    assert duplicated <= ambiguous
    assert calls_per_message <= 1.3
    assert during_per_s < before_per_s / 2  # the fleet backs off; no retry storm


def test_a_slow_gateway_times_nothing_out_and_keeps_transactional_latency_bounded(
    tmp_path: Path, cleanup: contextlib.ExitStack
) -> None:
    """Every call takes 2 s (+-0.2). With 400 bulk jobs queued, 40 transactional jobs
    enqueued one by one still go out within a few gateway latencies, nothing times out
    or is sent twice, and the queues drain."""
    stack = make_stack(cleanup, tmp_path, number_per_second=1000)
    stack.sandbox.faults(latency_ms=2000, latency_jitter_ms=200)
    bulk_lines = [template_line(n, "bulk", prefix="1556") for n in range(400)]
    with stack.dispatcher() as dispatcher:
        bulk = [r.job_id for r in dispatcher.send_many(bulk_lines)]
        stack.start_worker(threads=32)
        stack.start_worker(threads=32)
        started = time.monotonic()
        transactional = []
        for n in range(40):
            transactional.append(
                dispatcher.send_template(f"+1555{n:07d}", NUMBERS[n % 2], "hello_world", "en")
            )
            time.sleep(0.1)
        stack.wait_states(dispatcher, transactional + bulk, timeout_s=180)
        drained_s = time.monotonic() - started
        records = [dispatcher.job(i) for i in transactional + bulk]
    latencies_s = sorted(
        (sent - created) / 1000 for created, sent in ledger_times_ms(stack, transactional, "sent")
    )
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
