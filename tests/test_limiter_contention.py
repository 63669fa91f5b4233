"""Several processes hammering one limit on a real Redis: the admitted count is exact."""

from __future__ import annotations

import multiprocessing
import time

import redis

from dispatcher.engine.limiter import Limiter
from dispatcher.job.envelope import JobEnvelope
from tests.support.stack import make_settings

RATE = 50.0  # per second, no headroom: interval 20 ms, burst 5
PROCESSES = 6


def _limiter(url: str) -> Limiter:
    # The GCRA alone: no gateway answers here, so the adaptive throttle (which counts
    # what the gateway takes) is off; tests/test_throttle.py has it.
    s = make_settings(
        url, number_per_second=RATE, number_headroom=0, pair_interval_s=0, throttle_accept_factor=0
    )
    return Limiter(redis.Redis.from_url(url), s)


def _job() -> JobEnvelope:
    return JobEnvelope(
        id="j",
        channel="cloud",
        type="text",
        to="+15551230001",
        from_phone_no="+15550000001",
        payload={"body": "x"},
    )


def reserve(url: str, calls: int, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """Reserve ``calls`` slots at a frozen simulated now; report the delays."""
    limiter, job = _limiter(url), _job()
    queue.put([limiter.admit(job, max_wait_s=3600, now_ms=0).delay_s for _ in range(calls)])


def hammer(url: str, seconds: float, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """Ask for immediate admission (no waiting) as fast as possible, in real time."""
    limiter, job = _limiter(url), _job()
    admitted, started = 0, time.time()
    while time.time() < started + seconds:
        admitted += limiter.admit(job, max_wait_s=0).status == "ok"
    queue.put((admitted, started, time.time()))


def run(target, *args) -> list:  # type: ignore[no-untyped-def]
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, queue)) for _ in range(PROCESSES)]
    for proc in procs:
        proc.start()
    results = [queue.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(30)
    return results


def test_reserved_slots_are_distinct_and_evenly_spaced(redis_url: str) -> None:
    delays = sorted(d for batch in run(reserve, redis_url, 50) for d in batch)
    assert len(delays) == PROCESSES * 50
    interval = 1 / RATE
    burst = int(RATE / 10)
    # The burst goes at once; then one slot every interval, none shared, none skipped.
    expected = [0.0] * burst + [interval * k for k in range(1, len(delays) - burst + 1)]
    assert all(abs(d - e) < 1e-6 for d, e in zip(delays, expected, strict=True))


def test_immediate_admissions_use_the_rate_and_never_more(redis_url: str) -> None:
    seconds = 2.0
    results = run(hammer, redis_url, seconds)
    admitted = sum(r[0] for r in results)
    first_ask, last_ask = min(r[1] for r in results), max(r[2] for r in results)
    all_asking = min(r[2] for r in results) - max(r[1] for r in results)
    burst = int(RATE / 10)
    # Never more than the burst plus the rate over the time anyone asked; at least the
    # rate over the time everyone was asking (the whole quota is used).
    assert admitted <= burst + RATE * (last_ask - first_ask) + 1
    assert admitted >= RATE * all_asking - 1
    print(
        f"\n{PROCESSES} processes at {RATE}/s for {last_ask - first_ask:.2f} s: admitted {admitted}"
    )
