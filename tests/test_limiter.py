"""The admission script's arithmetic, on a real Redis with a simulated clock, against a
reference GCRA written out in Python; and the limits a job meets."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatcher.engine.limiter import Limit, Limiter
from dispatcher.job.envelope import JobEnvelope
from tests.support.stack import make_settings


@dataclass
class ReferenceGCRA:
    """GCRA with reservation, as the script should compute it, for several limits."""

    limits: list[Limit]
    tats: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.tats = [0.0] * len(self.limits)

    def admit(self, now: float, max_wait: float) -> tuple[str, float]:
        start = now
        for limit, tat in zip(self.limits, self.tats, strict=True):
            start = max(start, tat - limit.tolerance_ms)
        delay = start - now
        if delay > max_wait:
            return "wait", delay - max_wait  # asked again once the slot is within max_wait
        for i, limit in enumerate(self.limits):
            self.tats[i] = max(self.tats[i], start) + limit.interval_ms
        return "ok", delay


def envelope(lane: str = "transactional", to: str = "+15551230001") -> JobEnvelope:
    return JobEnvelope(
        id="j",
        channel="cloud",
        type="text",
        to=to,
        from_phone_no="+15550000001",
        payload={"body": "x"},
        lane=lane,
    )


@pytest.fixture
def limiter(redis_url: str) -> Limiter:
    s = make_settings(
        redis_url,
        number_per_second=10,
        number_headroom=0,
        pair_interval_s=0,
        transactional_reserve=0,
        quota_headroom=0,
        throttle_accept_factor=0,  # the GCRA alone (no gateway answers here)
    )
    return Limiter(redis.Redis.from_url(redis_url), s)


@settings(
    max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(
    steps=st.lists(
        st.tuples(st.floats(0, 400), st.sampled_from([0.0, 50.0, 1000.0])), min_size=1, max_size=60
    ),
)
def test_script_matches_the_reference_gcra(
    limiter: Limiter, redis_client: redis.Redis, steps: list[tuple[float, float]]
) -> None:
    redis_client.flushall()
    job = envelope()
    reference = ReferenceGCRA(limiter.limits_for(job))  # 10/s, burst 1
    now = 1_000_000.0
    for gap_ms, max_wait_ms in steps:
        now += gap_ms
        got = limiter.admit(job, max_wait_s=max_wait_ms / 1000, now_ms=now)
        want_status, want_delay = reference.admit(now, max_wait_ms)
        assert got.status == want_status
        assert got.delay_s * 1000 == pytest.approx(want_delay, abs=0.002)


@settings(
    max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(
    gaps=st.lists(st.floats(0, 300), min_size=20, max_size=200),
    burst=st.integers(1, 5),
    rate=st.sampled_from([5.0, 10.0, 80.0]),
)
def test_admitted_never_exceed_rate_plus_burst_in_any_window(
    redis_url: str, redis_client: redis.Redis, gaps: list[float], burst: int, rate: float
) -> None:
    """Immediate admissions only (max wait 0): count them in every 1 s window."""
    redis_client.flushall()
    s = make_settings(
        redis_url,
        number_per_second=rate,
        number_headroom=0,
        pair_interval_s=0,
        throttle_accept_factor=0,  # the GCRA alone (no gateway answers here)
    )
    limiter = Limiter(redis_client, s)
    job = envelope()
    limit = limiter.limits_for(job)[0]
    assert limit.rate == rate
    now, admitted = 0.0, []
    for gap in gaps:
        now += gap
        if limiter.admit(job, max_wait_s=0, now_ms=now).status == "ok":
            admitted.append(now)
    cap = int(rate) + max(1, int(rate / 10))
    for i, start in enumerate(admitted):
        in_window = sum(1 for t in admitted[i:] if t < start + 1000.0)
        assert in_window <= cap


def test_all_or_nothing_across_limits(limiter: Limiter, redis_client: redis.Redis) -> None:
    s = make_settings(
        limiter.settings.redis_url,
        number_per_second=1000,
        number_headroom=0,
        pair_interval_s=6,
        pair_burst=1,
    )
    limiter = Limiter(redis_client, s)
    first = limiter.admit(envelope(to="+15551230001"), max_wait_s=0, now_ms=0)
    assert (first.status, first.delay_s) == ("ok", 0.0)
    # The pair limit says no: nothing is charged, not even the number's limit.
    second = limiter.admit(envelope(to="+15551230001"), max_wait_s=0, now_ms=1)
    assert second.status == "wait" and second.delay_s == pytest.approx(5.999)
    tat_before = float(redis_client.get("waapi:rl:num:+15550000001"))
    assert limiter.admit(envelope(to="+15551230002"), max_wait_s=0, now_ms=1).status == "ok"
    assert float(redis_client.get("waapi:rl:num:+15550000001")) == pytest.approx(tat_before + 1)


def test_the_limits_a_job_meets(redis_url: str) -> None:
    import json

    keys = [
        {
            "name": "crm",
            "key": "waapi_a",
            "numbers": ["+15550000001"],
            "per_minute": 600,
            "per_hour": 20000,
        }
    ]
    s = make_settings(redis_url, waapi_keys=json.dumps(keys), number_limits='{"+15550000001": 200}')
    limiter = Limiter(redis.Redis.from_url(redis_url), s)
    tx = {limit.name: limit for limit in limiter.limits_for(envelope())}
    assert set(tx) == {
        "key:crm:m",
        "key:crm:h",
        "num:+15550000001",
        "pair:+15550000001:+15551230001",
    }
    assert tx["key:crm:m"].rate == pytest.approx(600 * 0.99)  # quota headroom
    assert tx["num:+15550000001"].rate == pytest.approx(200 * 0.9)  # inbound headroom
    assert tx["pair:+15550000001:+15551230001"].interval_ms == 6000
    assert tx["pair:+15550000001:+15551230001"].burst == 3
    bulk = {limit.name: limit for limit in limiter.limits_for(envelope(lane="bulk"))}
    assert bulk["key:crm:m:bulk"].rate == pytest.approx(600 * 0.99 * 0.9)  # the tx reserve
    assert bulk["num:+15550000001:bulk"].rate == pytest.approx(200 * 0.9 * 0.9)


def test_cooldowns_delay_everyone_and_only_lengthen(
    limiter: Limiter, redis_client: redis.Redis
) -> None:
    limiter.cool_down("num:+15550000001", 5.0)
    limiter.cool_down("num:+15550000001", 1.0)  # shorter: ignored
    assert 4000 < redis_client.pttl("waapi:cool:num:+15550000001") <= 5000
    waited = limiter.admit(envelope(), max_wait_s=0)
    assert waited.status == "wait" and 4.0 < waited.delay_s <= 5.0
    limiter.cool_down("pair:+15550000001:+15551230009", 30)
    assert limiter.admit(envelope(to="+15551230008"), max_wait_s=10).status == "ok"


def test_pause_and_resume(limiter: Limiter, redis_client: redis.Redis) -> None:
    assert limiter.pause("+15550000001", "131048: spam")
    assert not limiter.pause("+15550000001", "again")
    assert limiter.admit(envelope()).status == "paused"
    assert set(limiter.paused()) == {"+15550000001"}
    redis_client.sadd("waapi:parked:+15550000001", "job-1")
    redis_client.zadd("waapi:timers", {"job-1": 9e15})
    assert limiter.resume("+15550000001") == 1
    assert redis_client.zscore("waapi:timers", "job-1") < 9e15
    assert limiter.admit(envelope()).status == "ok"
    alerts = [
        {k.decode(): v.decode() for k, v in f.items()}
        for _, f in redis_client.xrange("waapi:events")
    ]
    assert [(a["state"], a["number"]) for a in alerts] == [
        ("paused", "+15550000001"),
        ("resumed", "+15550000001"),
    ]
    assert alerts[0]["alert"] == "131048: spam"


def reach_limiter(redis_url: str, **settings: object) -> Limiter:
    """The shipped limits with a portfolio of 10 recipients on both demo numbers."""
    portfolio = '[{"name": "acme", "tier": 10, "numbers": ["+15550000001", "+15550000002"]}]'
    return Limiter(
        redis.Redis.from_url(redis_url),
        make_settings(redis_url, portfolios=portfolio, **settings),
    )


def test_the_messaging_limit_counts_unique_recipients_per_portfolio_over_24_hours(
    redis_url: str, redis_client: redis.Redis
) -> None:
    limiter = reach_limiter(redis_url, transactional_reserve=0.2)
    t0 = 1_800_000_000_000.0
    # The bulk lane may reach 8 of the 10 (20% is the transactional lane's reserve); a
    # recipient already reached costs nothing, on either number of the portfolio.
    for i in range(8):
        assert limiter.admit(envelope("bulk", to=f"+1555123{i:04d}"), now_ms=t0).status == "ok"
    again = envelope("bulk", to="+15551230003").model_copy(update={"from_phone_no": "+15550000002"})
    assert limiter.admit(again, now_ms=t0 + 10).status == "ok"
    ninth = limiter.admit(envelope("bulk", to="+15551239999"), now_ms=t0 + 20)
    assert (ninth.status, ninth.reason) == ("wait", "reach")
    # Not charged; it waits until a recipient of the first minute is 24 hours old.
    assert 86_399 < ninth.delay_s <= 86_400.1
    assert redis_client.zcard("waapi:reach:acme") == 8
    # The transactional lane still has its reserve: two more new recipients, then waits.
    for to in ("+15551239991", "+15551239992"):
        assert limiter.admit(envelope(to=to), now_ms=t0 + 30).status == "ok"
    assert limiter.admit(envelope(to="+15551239993"), now_ms=t0 + 40).reason == "reach"
    # 24 hours after the first sends, the window has slid past them.
    later = limiter.admit(envelope("bulk", to="+15551239999"), now_ms=t0 + 86_400_001)
    assert later.status == "ok"


def test_a_recipient_with_an_open_window_costs_no_messaging_limit(
    redis_url: str, redis_client: redis.Redis
) -> None:
    limiter = reach_limiter(redis_url)
    redis_client.set("waapi:win:+15550000001:+15551230077", 1)  # the customer wrote
    for _ in range(3):
        assert limiter.admit(envelope(to="+15551230077")).status == "ok"
    assert redis_client.zcard("waapi:reach:acme") == 0
    assert limiter.admit(envelope(to="+15551230078")).status == "ok"
    assert redis_client.zrange("waapi:reach:acme", 0, -1) == [b"+15551230078"]
