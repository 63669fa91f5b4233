"""The adaptive throttle (admit.lua counts admissions, finish.lua counts calls the
gateway took) on a real Redis with a simulated clock: a gateway that takes 65% of calls
is not slowed, one that takes nothing gets only probes, and the rate comes back when it
takes calls again. Which errors count against it is the errors' own ``overload``."""

from __future__ import annotations

import random

import pytest
import redis

from dispatcher.engine.limiter import Limiter
from dispatcher.errors import (
    ApiCallLimited,
    BadRequest,
    ConnectFailed,
    ConnectionReset,
    OutsideWindow,
    RateLimited,
    ReadTimedOut,
    ServerError,
    ThroughputLimited,
    UnexpectedResponse,
)
from dispatcher.job.envelope import JobEnvelope
from dispatcher.ledger.jobs import Ledger
from tests.support.stack import make_settings
from tests.support.waiting import FakeClock

T0_MS = 1_800_000_000_000.0


def test_which_errors_count_as_the_gateway_not_taking_the_call() -> None:
    overload = [
        ServerError("x", status=503),
        RateLimited("x", status=429),
        ConnectFailed("x"),
        ConnectionReset("x"),
        ReadTimedOut("x"),
        UnexpectedResponse("x"),
        ApiCallLimited("x", status=400, code=4),
        ThroughputLimited("x", status=400, code=130429),
    ]
    taken = [BadRequest("x", status=400), OutsideWindow("x", status=400, code=131047)]
    assert all(e.overload for e in overload)
    assert not any(e.overload for e in taken)


def envelope(n: int) -> JobEnvelope:
    return JobEnvelope(
        id=f"j{n}",
        channel="cloud",
        type="text",
        to=f"+1555123{n % 10000:04d}",
        from_phone_no="+15550000001",
        payload={"body": "x"},
    )


class Gateway:
    """Drives admissions and outcomes through the real scripts, one call each."""

    def __init__(self, redis_url: str) -> None:
        # The shipped throttle (factor 2, 10 s window, 20 calls, 1 probe/s); the number's
        # own rate is set high so that only the throttle decides here.
        settings = make_settings(redis_url, number_per_second=10_000, pair_interval_s=0)
        self.clock = FakeClock(T0_MS / 1000)
        client = redis.Redis.from_url(redis_url)
        self.limiter = Limiter(client, settings)
        self.ledger = Ledger(client, settings, self.clock)
        self.n = 0

    def run(self, seconds: float, per_s: int, takes: float, rng: random.Random) -> tuple[int, int]:
        """``per_s`` admissions a second for ``seconds``; the gateway takes a share
        ``takes`` of the calls let through. Returns (let through, held back)."""
        through = held = 0
        for _ in range(int(seconds * per_s)):
            self.clock.advance(1 / per_s)
            self.n += 1
            job = envelope(self.n)
            admission = self.limiter.admit(job, now_ms=self.clock.now * 1000, max_wait_s=0.5)
            if admission.status != "ok":
                held += 1
                continue
            through += 1
            scopes = self.limiter.throttle_scopes(job)
            taken = rng.random() < takes
            self.ledger.finish(job.id, 1, "sent", call=self.limiter.throttle.call(scopes, taken))
        return through, held


@pytest.fixture
def gateway(redis_url: str) -> Gateway:
    return Gateway(redis_url)


def test_a_gateway_that_takes_most_calls_is_not_slowed(gateway: Gateway) -> None:
    through, held = gateway.run(30, 100, takes=0.65, rng=random.Random(1))  # the storm
    assert (through, held) == (3000, 0)


def test_a_gateway_that_takes_nothing_gets_probes_and_comes_back(gateway: Gateway) -> None:
    rng = random.Random(2)
    assert gateway.run(5, 100, takes=1.0, rng=rng) == (500, 0)
    gateway.run(10, 100, takes=0.0, rng=rng)  # it goes down: the throttle engages
    through, held = gateway.run(60, 100, takes=0.0, rng=rng)  # a minute of outage
    assert through <= 60 * 2  # about one probe a second, not 100 calls a second
    assert held >= 60 * 100 - 120
    back = []
    for _ in range(8):  # the gateway is back: the rate returns within seconds
        back.append(gateway.run(5, 100, takes=1.0, rng=rng)[0])
    assert back[-1] == 500, back
    assert sum(back[:2]) < 1000  # probed first, not all at once


def test_held_back_jobs_wait_about_the_window_and_nothing_is_charged(
    gateway: Gateway, redis_url: str
) -> None:
    rng = random.Random(3)
    gateway.run(12, 50, takes=0.0, rng=rng)
    gateway.clock.advance(0.01)
    waits = []
    for n in range(50):
        admission = gateway.limiter.admit(
            envelope(10_000 + n), now_ms=gateway.clock.now * 1000, max_wait_s=0.5
        )
        if admission.status == "wait":
            waits.append(admission.delay_s)
    assert len(waits) >= 45
    assert all(0.25 <= w <= 15.0 for w in waits)
    metrics = redis.Redis.from_url(redis_url).hgetall("waapi:m:waits")
    assert int(metrics[b"+15550000001|throttle"]) >= 45


def test_a_call_the_gateway_did_not_take_gives_the_recipients_slot_back(redis_url: str) -> None:
    settings = make_settings(
        redis_url, pair_interval_s=6, pair_burst=1, number_per_second=1000, number_headroom=0
    )
    client = redis.Redis.from_url(redis_url)
    clock = FakeClock(T0_MS / 1000)
    limiter, ledger = Limiter(client, settings), Ledger(client, settings, clock)
    job = envelope(1)
    assert limiter.admit(job, now_ms=T0_MS, max_wait_s=0).status == "ok"
    assert limiter.admit(job, now_ms=T0_MS + 10, max_wait_s=0).status == "wait"  # 6 s apart
    # The call got a 503: Meta never saw it, so the pair's slot is given back.
    ledger.finish(job.id, 1, "retry_wait", call={"refunds": limiter.refunds(job)})
    again = limiter.admit(job, now_ms=T0_MS + 20, max_wait_s=0)
    assert (again.status, again.delay_s) == ("ok", 0.0)
    assert limiter.admit(job, now_ms=T0_MS + 30, max_wait_s=0).status == "wait"  # used again
