"""Retry decisions are pure: the retry table, backoff bounds, Retry-After winning."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatcher.engine.retry import backoff_s, decide
from dispatcher.errors import (
    ConnectFailed,
    GatewayError,
    MarketingCapped,
    OutsideWindow,
    PairRateLimited,
    RateLimited,
    ReadTimedOut,
    ServerError,
    Unauthorized,
    http_error,
)
from tests.support.envelopes import stored
from tests.support.processes import SandboxProcess
from tests.support.stack import make_settings

FROM = "+15550000001"
SETTINGS = make_settings(
    "redis://127.0.0.1:1/0", retry_base_delay_s=1.0, retry_max_delay_s=300.0, retry_max_attempts=5
)


@given(attempt=st.integers(1, 40), seed=st.integers())
def test_full_jitter_stays_within_the_capped_exponential(attempt: int, seed: int) -> None:
    delay = backoff_s(attempt, 1.0, 300.0, random.Random(seed))
    assert 0.0 <= delay <= min(300.0, 2 ** (attempt - 1))


def test_jitter_spreads_retries() -> None:
    rng = random.Random(1)
    delays = {round(backoff_s(6, 1.0, 300.0, rng), 3) for _ in range(50)}
    assert len(delays) > 40


@pytest.mark.parametrize(
    ("error", "lane", "state"),
    [
        (ServerError("x", status=503), "transactional", "retry_wait"),
        (RateLimited("x", status=429), "bulk", "retry_wait"),
        (ConnectFailed("x"), "bulk", "retry_wait"),
        (ReadTimedOut("x"), "transactional", "retry_wait"),  # policy: resend
        (ReadTimedOut("x"), "bulk", "unknown"),  # policy: hold
        (Unauthorized("x", status=401), "transactional", "failed"),
        (OutsideWindow("x", status=400, code=131047), "transactional", "failed"),
        (http_error(400, "(#100) bad"), "bulk", "failed"),
    ],
)
def test_the_retry_table(error: GatewayError, lane: str, state: str) -> None:
    decision = decide(error, 1, lane, SETTINGS, random.Random(0))
    assert decision.state == state
    assert decision.ambiguous is isinstance(error, ReadTimedOut)


def test_exhausted_retries_are_dead() -> None:
    assert decide(ServerError("x"), 5, "bulk", SETTINGS, random.Random(0)).state == "dead"
    assert decide(ServerError("x"), 4, "bulk", SETTINGS, random.Random(0)).state == "retry_wait"


@given(retry_after=st.floats(0, 10_000), attempt=st.integers(1, 4))
def test_a_longer_retry_after_wins(retry_after: float, attempt: int) -> None:
    error = RateLimited("x", status=429, retry_after_s=retry_after)
    decision = decide(error, attempt, "bulk", SETTINGS, random.Random(0))
    assert decision.delay_s is not None and decision.delay_s >= retry_after


def test_pair_rate_backs_off_four_to_the_n_and_marketing_cap_waits_long() -> None:
    pair = PairRateLimited("x", status=400, code=131056)
    assert [decide(pair, n, "bulk", SETTINGS, random.Random(0)).delay_s for n in (1, 2, 3)] == [
        4.0,
        16.0,
        64.0,
    ]
    capped = MarketingCapped("x", status=400, code=131049)
    assert decide(capped, 1, "bulk", SETTINGS, random.Random(0)).delay_s == 3600.0


def test_retries_are_budgeted_in_time_a_job_past_its_expiry_expires_never_dies() -> None:
    defaults = make_settings("redis://127.0.0.1:1/0")  # what a user gets
    now = 1_800_000_000.0
    error = ServerError("x", status=503)

    def state(attempt: int, expires_in_s: float | None) -> str:
        expires = None if expires_in_s is None else now + expires_in_s
        return decide(
            error,
            attempt,
            "transactional",
            defaults,
            random.Random(0),
            now_s=now,
            expires_at_s=expires,
        ).state

    assert state(1, 86_400) == "retry_wait"
    assert state(9, 0.001) == "expired"  # the next attempt would come after expiresAt
    assert state(defaults.retry_max_attempts, 86_400) == "dead"  # fails for ever: the cap
    assert state(defaults.retry_max_attempts, 0.001) == "expired"  # the time comes first
    # The backoff only spreads retries (the adaptive throttle paces a gateway in
    # trouble): it stays within the cap.
    delays = [decide(error, n, "bulk", defaults, random.Random(n)).delay_s for n in range(1, 30)]
    assert all(d is not None and 0 <= d <= defaults.retry_max_delay_s for d in delays)


def test_marketing_cap_intervals_grow_with_each_cap_of_a_recipient() -> None:
    capped = MarketingCapped("x", status=400, code=131049)
    defaults = make_settings("redis://127.0.0.1:1/0")  # 1 h, 4 h, 24 h
    waits = [
        decide(capped, 1, "bulk", defaults, random.Random(0), times_capped=n).delay_s
        for n in (1, 2, 3, 9)
    ]
    assert waits == [3600.0, 4 * 3600.0, 24 * 3600.0, 24 * 3600.0]
    tuned = make_settings("redis://127.0.0.1:1/0", marketing_cap_backoff_s=[600, 1200])
    assert decide(capped, 1, "bulk", tuned, random.Random(0), times_capped=5).delay_s == 1200.0


def test_a_recipient_capped_again_waits_longer_through_the_worker(
    redis_url: str, sandbox: SandboxProcess
) -> None:
    """Meta's 131049 through a real worker and the sandbox: the job waits (not failed),
    the second cap of the same recipient waits the second interval, the job says so,
    and a campaign-less job's error carries the code."""
    from datetime import datetime

    from dispatcher.engine.worker import Worker
    from dispatcher.producer.api import Dispatcher

    to, other = "+15551239001", "+15551239002"
    sandbox.faults(recipient_errors={to: 131049, other: 131049})
    settings = make_settings(redis_url, base_url=sandbox.base_url)
    worker = Worker.from_settings(settings, concurrency=2)
    with Dispatcher(settings) as dispatcher:
        try:
            waits_h = []
            for recipient in (to, to, other):
                job_id = dispatcher.send_template(recipient, FROM, "hello_world", "en", lane="bulk")
                assert worker.handle(stored(dispatcher.ledger, job_id)) == "retry_wait"
                job = dispatcher.job(job_id)
                assert job is not None and job.state == "retry_wait" and job.attempts == 1
                assert job.error is not None and job.error["code"] == 131049
                assert job.next_attempt_at is not None
                wait_s = datetime.fromisoformat(job.next_attempt_at).timestamp() - time.time()
                waits_h.append(round(wait_s / 3600))
        finally:
            worker.close()
    assert waits_h == [1, 4, 1]  # per recipient: the other one starts at the first interval
    assert "marketing cap 2 for this recipient" in str(job_error_of(dispatcher, to))


def job_error_of(dispatcher: Any, recipient: str) -> Any:
    jobs = [j for j in dispatcher.jobs(limit=10) if j.to == recipient]
    return max(jobs, key=lambda j: j.id).error
