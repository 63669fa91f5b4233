"""The circuit breaker trips on the gateway's trouble, not on a message's refusal."""

from __future__ import annotations

from dispatcher.breaker import Breaker, BreakerPolicy, is_gateway_trouble
from dispatcher.errors import (
    BadRequest,
    ConnectFailed,
    ConnectionReset,
    RateLimited,
    ReadTimedOut,
    ServerError,
    UnexpectedResponse,
)
from tests.support import FakeClock


def test_what_counts_as_the_gateways_trouble() -> None:
    trouble = [
        ServerError("x", status=503),
        ConnectFailed("x"),
        ConnectionReset("x"),
        ReadTimedOut("x"),
        UnexpectedResponse("x"),
    ]
    healthy = [BadRequest("x", status=400), RateLimited("x", status=429)]
    assert all(is_gateway_trouble(e) for e in trouble)
    assert not any(is_gateway_trouble(e) for e in healthy)


def test_trips_only_after_min_calls_at_the_error_ratio_and_doubles_while_it_lasts() -> None:
    clock = FakeClock()
    breaker = Breaker(BreakerPolicy(error_ratio=0.2, min_calls=20, memory_s=30), clock)
    trips = [breaker.record("k", failed=True) for _ in range(19)]
    assert trips == [None] * 19  # too few calls to judge
    assert breaker.record("k", failed=True) == 0.5
    # The window starts again after a trip: 19 more failures, then the second trip.
    assert [breaker.record("k", failed=True) for _ in range(19)] == [None] * 19
    assert breaker.record("k", failed=True) == 1.0
    for _ in range(20):
        last = breaker.record("k", failed=True)
    assert last == 2.0
    clock.advance(31)  # the trips are forgotten: back to the base cooldown
    for _ in range(20):
        last = breaker.record("k", failed=True)
    assert last == 0.5


def test_a_steady_low_error_rate_never_trips_and_keys_are_separate() -> None:
    breaker = Breaker(BreakerPolicy(error_ratio=0.2, min_calls=20, window_calls=50))
    outcomes = [n % 10 == 0 for n in range(10_000)]  # 10% failures
    assert all(breaker.record("k", failed=f) is None for f in outcomes)
    for _ in range(19):
        assert breaker.record("a", failed=True) is None
    assert breaker.record("b", failed=True) is None  # another key's health is its own
    assert breaker.record("a", failed=True) == 0.5


def test_the_cooldown_is_capped() -> None:
    breaker = Breaker(BreakerPolicy(min_calls=1, max_cooldown_s=3.0))
    cooldowns = [breaker.record("k", failed=True) for _ in range(10)]
    assert cooldowns[:4] == [0.5, 1.0, 2.0, 3.0]
    assert set(cooldowns[4:]) == {3.0}
