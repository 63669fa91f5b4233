"""Meta's messaging limit end to end, a day in a minute: a real Redis, the real send path
(claim, admission, the gateway client, the ledger) played in-process on a simulated
clock, and the sandbox gateway (its own process) keeping a tier the way Meta does, its
clock moved forward with ours."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from prometheus_client import CollectorRegistry, generate_latest

from dispatcher.campaigns import Campaigns, rows
from dispatcher.engine.clients import Clients
from dispatcher.engine.limiter import Limiter
from dispatcher.engine.worker import Worker
from dispatcher.job.envelope import JobEnvelope
from dispatcher.producer.api import Dispatcher
from dispatcher.telemetry.metrics import LedgerCollector
from tests.support.cli import run_cli
from tests.support.data import campaign_spec
from tests.support.envelopes import stored
from tests.support.processes import SandboxProcess
from tests.support.stack import make_settings
from tests.support.waiting import FakeClock

pytestmark = pytest.mark.fake_clock

DAY_S = 86_400.0


@pytest.fixture
def sandbox() -> Iterator[SandboxProcess]:
    gateway = SandboxProcess.start("--messaging-tier", "2000")
    yield gateway
    gateway.stop()


class Day:
    """The send path on a simulated clock: what workers, beat and the campaign tick do,
    step by step, until nothing is due."""

    def __init__(self, redis_url: str, sandbox: SandboxProcess, **settings: Any) -> None:
        self.clock = FakeClock(datetime.now(UTC).timestamp())
        self.sandbox = sandbox
        self.settings = make_settings(redis_url, sandbox.base_url, **settings)
        client = redis.Redis.from_url(redis_url)
        self.dispatcher = Dispatcher(self.settings, client, self.clock)
        self.campaigns = Campaigns(self.dispatcher)
        self.worker = Worker(
            self.settings,
            self.dispatcher.ledger,
            Clients(self.settings, 8),
            Limiter(client, self.settings, clock=self.clock),
            sleep=self.clock.advance,  # a slot's wait passes on the simulated clock
        )

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def run(self) -> None:
        """Everything due within the minute, until nothing is: fan out, send, publish
        due retries, letting the clock run to the next one due."""
        client = self.dispatcher.ledger.client
        while True:
            self.campaigns.tick(self.now())
            self.dispatcher.ledger.tick()
            queued = self.dispatcher.ledger.list(state="queued", limit=100_000)
            if not queued:
                due = client.zrange("waapi:timers", 0, 0, withscores=True)
                if due and due[0][1] / 1000 - self.clock() < 60:
                    self.clock.advance(max(0.0, due[0][1] / 1000 - self.clock()) + 0.001)
                    continue
                return
            envelopes = [stored(self.dispatcher.ledger, r.id) for r in queued]
            _, lanes = self.worker.batch(envelopes, 1)  # one lane: in order, on this thread
            for lane in lanes:
                self.worker.run(lane)

    def pass_time(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.sandbox.http.post(
            self.sandbox.root + "/_sandbox/clock", json={"advance_s": seconds}
        ).raise_for_status()

    def reached(self) -> list[dict[str, Any]]:
        """Every send the gateway accepted, in order."""
        sent = self.sandbox.http.get(self.sandbox.root + "/_sandbox/sent?limit=100000")
        return sent.json()["items"]  # type: ignore[no-any-return]


def audience(n: int) -> io.StringIO:
    lines = (json.dumps({"to": f"+1555{i:07d}", "name": f"N{i}", "awb": i}) for i in range(n))
    return io.StringIO("\n".join(lines) + "\n")


def test_a_campaign_over_the_tier_sends_the_rest_as_the_window_slides(
    redis_url: str, sandbox: SandboxProcess
) -> None:
    day = Day(redis_url, sandbox, messaging_tier=2000)
    created = day.campaigns.create(
        campaign_spec(schedule={"at": day.now().isoformat()}), rows(audience(5000), "jsonl")
    )
    day.run()
    # The campaign (bulk) takes its share of the 2,000 (90%: the transactional reserve is
    # 10%); then a transactional job to a new recipient still goes, up to the tier.
    first = day.reached()
    assert len({m["to"] for m in first}) == len(first) == 1800
    otps = [
        day.dispatcher.send_template(f"+1666{i:07d}", "+15550000001", "hello_world", "en")
        for i in range(201)
    ]
    day.run()
    first = day.reached()
    assert len({m["to"] for m in first}) == len(first) == 2000  # the tier, not one more
    jobs = [day.dispatcher.job(otp) for otp in otps]
    [waiting] = [job for job in jobs if job is not None and job.state != "sent"]
    assert (waiting.state, waiting.attempts) == ("retry_wait", 0)  # a wait, not an attempt
    assert waiting.waiting_for is not None
    assert waiting.waiting_for.startswith("messaging limit: portfolio portfolio has reached")
    # A recipient reached already in the window costs nothing.
    again = day.dispatcher.send_template("+15550000007", "+15550000002", "hello_world", "en")
    day.run()
    assert day.dispatcher.job(again).state == "sent"  # type: ignore[union-attr]

    windows = [len(first) + 1]
    for _ in range(2):
        day.pass_time(DAY_S + 600)  # the window slides past the first sends
        before = len(day.reached())
        day.run()
        windows.append(len(day.reached()) - before)
    sends = day.reached()
    recipients = [m["to"] for m in sends]
    assert windows == [2001, 1800, 1400]  # 2,000 new (+ 1 reached already), then 1,800 a day
    assert len(recipients) - 1 == len(set(recipients)) == 5200  # nobody twice but the one
    # The OTP that waited for the tier was a day old when the window slid: a transactional
    # job's maximum age (24 h) ended it, rather than sending it a day late.
    assert day.dispatcher.job(waiting.id).state == "expired"  # type: ignore[union-attr]
    assert not [m for m in sends if m.get("undelivered")]  # Meta delivered every one
    funnel = day.campaigns.get(created.campaign_id)["funnel"]  # type: ignore[index]
    assert funnel.get("sent") == 5000 and set(funnel) <= {"sent", "billable:marketing"}


def test_without_the_dispatchers_limit_meta_accepts_and_never_delivers(
    redis_url: str, sandbox: SandboxProcess
) -> None:
    day = Day(redis_url, sandbox)  # no PORTFOLIOS: the dispatcher does not know the tier
    day.campaigns.create(
        campaign_spec(schedule={"at": day.now().isoformat()}), rows(audience(2500), "jsonl")
    )
    day.run()
    sends = day.reached()
    assert len(sends) == 2500  # every one "sent" ...
    assert len([m for m in sends if m.get("undelivered")]) == 500  # ... 500 never delivered


def test_limits_status_and_metrics_show_each_portfolios_use(
    redis_url: str, cli_env: dict[str, str]
) -> None:
    env = {**cli_env, "MESSAGING_TIER": "250"}
    settings = make_settings(redis_url, messaging_tier=250)
    limiter = Limiter(redis.Redis.from_url(redis_url), settings)
    for i in range(30):  # 30 new recipients, one of them twice
        limiter.admit(JobEnvelope.model_validate(template_job(f"+1777{i:07d}", "bulk")))
    limiter.admit(JobEnvelope.model_validate(template_job("+17770000003")))

    limits = run_cli("limits", "--json", env=env)
    assert limits.returncode == 0, limits.stderr
    [use] = json.loads(limits.stdout)["messagingLimits"]
    assert use["portfolio"] == "portfolio" and use["tier"] == 250
    assert (use["reached24h"], use["remaining"], use["bulkRemaining"]) == (30, 220, 195)
    assert use["nextFreeAt"] > datetime.now(UTC).isoformat()[:16]  # about a day from now
    text = run_cli("limits", env=env).stdout
    assert "portfolio portfolio: messaging limit 250 recipients/24 h, 30 reached, 220 left" in text

    status = run_cli("status", "--json", "--sample-s", "0.1", env=env)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["messagingLimits"] == [
        {
            "portfolio": "portfolio",
            "tier": 250,
            "reached24h": 30,
            "remaining": 220,
            "bulkRemaining": 195,
        }
    ]
    assert "portfolio portfolio: 30 of 250 recipients in 24 h; 220 left (195 for bulk)" in (
        run_cli("status", "--sample-s", "0.1", env=env).stdout
    )
    exposition = generate_latest(registry_of(LedgerCollector(limiter.client, settings))).decode()
    assert 'waapi_messaging_limit_reached{portfolio="portfolio"} 30.0' in exposition
    assert 'waapi_messaging_limit_remaining{lane="bulk",portfolio="portfolio"} 195.0' in exposition


def template_job(to: str, lane: str = "transactional") -> dict[str, Any]:
    return {
        "id": f"j{to[1:]}{lane}",
        "channel": "cloud",
        "type": "template",
        "to": to,
        "from_phone_no": "+15550000001",
        "payload": {"name": "hello_world", "language": {"code": "en"}},
        "lane": lane,
    }


def registry_of(collector: LedgerCollector) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)
    return registry


def test_a_campaign_shows_its_plan_against_the_messaging_limit(
    redis_url: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**cli_env, "MESSAGING_TIER": "250"}
    limiter = Limiter(redis.Redis.from_url(redis_url), make_settings(redis_url, messaging_tier=250))
    for i in range(20):  # 20 reached already today, 5 of them in the audience
        limiter.admit(JobEnvelope.model_validate(template_job(f"+1888{i:07d}")))
    spec = {
        "name": "Winter sale",
        "fromPhoneNos": ["+15550000001"],
        "message": {"type": "template", "body": {"name": "hello_world", "language": "en"}},
        "schedule": {"at": (datetime.now(UTC) + timedelta(hours=1)).isoformat()},
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    lines = [json.dumps({"to": f"+1888{i:07d}"}) for i in range(15, 515)]
    (tmp_path / "audience.jsonl").write_text("\n".join(lines) + "\n")
    created = run_cli(
        "campaign", "create", "spec.json", "--audience", "audience.jsonl", "--json",
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    plan = json.loads(created.stdout)["plan"]
    assert plan["messagingLimits"] == [
        {"portfolio": "portfolio", "tier": 250, "newRecipients": 495, "budgetNow": 205}
    ]
    # 205 today, 225 a day later (the bulk share of 250), the last 65 a day after that.
    finish = datetime.fromisoformat(plan["estimatedFinish"])
    start = datetime.fromisoformat(spec["schedule"]["at"])  # type: ignore[arg-type]
    assert timedelta(days=2) < finish - start < timedelta(days=2, hours=1)
    assert plan["limitedBy"] == "messaging limit"
    campaign_id = json.loads(created.stdout)["campaignId"]
    shown = run_cli("campaign", "show", campaign_id, env=env).stdout
    assert "495 new recipients for portfolio portfolio (tier 250); 205 left now" in shown
    assert "limited by messaging limit" in shown
    assert run_cli("campaign", "cancel", campaign_id, env=env).returncode == 0
    watched = run_cli("campaign", "watch", campaign_id, "--interval", "0.1", env=env)
    assert "495 new recipients" in watched.stdout, watched.stdout
