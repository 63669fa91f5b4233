"""Campaigns on a real Redis with injected time: launch once, fan out with back-pressure,
pause and cancel reaching queued jobs, a funnel that adds up. Workers are played by hand
(claim and finish) so every step can be checked."""

from __future__ import annotations

import io
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dispatcher.campaigns import Campaigns, CampaignSpec, rows
from dispatcher.errors import InvalidRequest
from dispatcher.job.envelope import JobEnvelope
from dispatcher.ledger.jobs import Claim
from dispatcher.producer.api import Dispatcher
from tests.support.data import campaign_spec
from tests.support.envelopes import stored
from tests.support.stack import make_settings

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def campaigns(dispatcher: Dispatcher) -> Campaigns:
    return Campaigns(dispatcher)


def spec(**extra: Any) -> CampaignSpec:
    fields = {"name": "December promo", "schedule": {"at": T0.isoformat()}, "queueAhead": 50}
    return campaign_spec(**{**fields, **extra})  # type: ignore[no-any-return]


def audience(n: int) -> str:
    lines = [json.dumps({"to": f"+1555{i:07d}", "name": f"N{i}", "awb": i}) for i in range(n)]
    return "\n".join(lines) + "\n"


def send_all_queued(dispatcher: Dispatcher, campaign_id: str) -> int:
    """Play a worker: claim and finish every queued job of the campaign."""
    sent = 0
    for record in dispatcher.ledger.list(campaign=campaign_id, state="queued", limit=10_000):
        claim = dispatcher.ledger.claim(record.id)
        if isinstance(claim, Claim):
            dispatcher.ledger.finish(record.id, claim.attempt, "sent", wamid=f"w.{record.id}")
            sent += 1
    return sent


def launched(campaigns: Campaigns, recipients: int, **fields: Any) -> Any:
    """A campaign of ``recipients`` rows (``spec(**fields)``), created an hour before T0
    and fanned out by a tick at T0."""
    created = campaigns.create(
        spec(**fields),
        rows(io.StringIO(audience(recipients)), "jsonl"),
        now=T0 - timedelta(hours=1),
    )
    campaigns.tick(T0)
    return created


def test_audience_rows_are_checked_and_streamed() -> None:
    text = "to,name\n+15551230001,Ann\n12,Bob\n15551230002,Cy\n"
    parsed = list(rows(io.StringIO(text), "csv"))
    assert [r[1]["to"] for r in parsed if isinstance(r, tuple)] == ["+15551230001", "+15551230002"]
    refused = [r for r in parsed if not isinstance(r, tuple)]
    assert [(r.line, r.reason.split(" (")[0]) for r in refused] == [
        (3, "to must be an E.164 number")
    ]
    assert next(rows(io.StringIO("name\nx\n"), "csv")).reason == (  # type: ignore[union-attr]
        "a CSV audience needs a 'to' column"
    )


def test_a_message_that_cannot_be_sent_is_refused_at_create_and_nothing_is_stored(
    campaigns: Campaigns, dispatcher: Dispatcher
) -> None:
    no_language = {"type": "template", "body": {"name": "order_shipped"}}
    with pytest.raises(InvalidRequest) as refused:
        campaigns.create(spec(message=no_language), rows(io.StringIO(audience(3)), "jsonl"))
    assert str(refused.value) == "message.body.language is required"
    wrong_type = {"type": "fax", "body": {"body": "hi"}}
    with pytest.raises(InvalidRequest, match=r"^message.type must be one of "):
        campaigns.create(spec(message=wrong_type), rows(io.StringIO(audience(3)), "jsonl"))
    assert dispatcher.ledger.client.keys("waapi:camp*") == []


def test_a_variable_placeholder_is_not_judged_but_every_row_is(
    campaigns: Campaigns, dispatcher: Dispatcher
) -> None:
    image = {"type": "image", "body": {"link": "{{url}}", "caption": "Hi {{name}}"}}
    lines = [
        {"to": "+15550001001", "url": "https://example.com/a.png", "name": "Ann"},
        {"to": "+15550001002", "url": "not a link", "name": "Bob"},
        {"to": "+15550001003", "url": "https://example.com/c.png", "name": ""},
        {"to": "+15550001004", "url": "https://example.com/d.png"},
        {"to": "+15550001005", "url": "https://example.com/e.png", "name": None},
    ]
    text = "\n".join(json.dumps(line) for line in lines) + "\n"
    created = campaigns.create(spec(message=image), rows(io.StringIO(text), "jsonl"))
    assert created.recipients == 1
    assert [(r.line, r.reason) for r in created.refused] == [
        (2, "link must be a public https:// URL"),
        (3, "variable name is empty"),
        (4, "variable name is missing"),
        (5, "variable name is empty"),
    ]
    csv_text = "to,name,awb\n+15550002001,Ann,1\n+15550002002,,2\n"
    from_csv = campaigns.create(spec(), rows(io.StringIO(csv_text), "csv"))
    assert from_csv.recipients == 1
    assert [(r.line, r.reason) for r in from_csv.refused] == [(3, "variable name is empty")]


def test_a_row_refused_at_fan_out_says_why_everywhere(
    campaigns: Campaigns, dispatcher: Dispatcher, caplog: pytest.LogCaptureFixture
) -> None:
    created = campaigns.create(
        spec(), rows(io.StringIO(audience(4)), "jsonl"), now=T0 - timedelta(hours=1)
    )
    # The configuration changed after the campaign was checked: the second number is
    # no longer bound to a key (played by dropping it from the dispatcher's view).
    dispatcher._preparer._channels.pop("+15550000002")
    campaigns.tick(T0)
    funnel = campaigns.funnel(created.campaign_id, 1)
    assert funnel == {"queued": 2, "failed": 2, "failed:100": 2}
    report = {r["to"]: r for r in campaigns.report(created.campaign_id)}
    refused = report["+15550000001"]
    assert (refused["state"], refused["errorCode"]) == ("failed", "100")
    assert refused["error"] == (
        "refused at fan-out: fromPhoneNo is not a number of any configured key"
    )
    record = dispatcher.job(refused["jobId"])
    assert record is not None and record.state == "failed"
    assert record.error == {"status": None, "code": 100, "message": refused["error"]}
    assert "not sent: refused at fan-out" in caplog.text
    campaigns.tick(T0)  # fanned out again (a crash before the cursor moved): counted once
    assert campaigns.funnel(created.campaign_id, 1)["failed"] == 2


def test_a_campaign_launches_at_its_time_once_and_fans_out_with_back_pressure(
    campaigns: Campaigns, dispatcher: Dispatcher
) -> None:
    created = campaigns.create(
        spec(), rows(io.StringIO(audience(120)), "jsonl"), now=T0 - timedelta(hours=1)
    )
    assert created.recipients == 120 and created.next_run == T0
    assert campaigns.tick(T0 - timedelta(seconds=1)) == {"launched": 0, "queued": 0}
    # Two beats tick at the same moment: one launch.
    results: list[dict[str, int]] = []
    threads = [
        threading.Thread(target=lambda: results.append(campaigns.tick(T0))) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r["launched"] for r in results) == 1
    info = campaigns.get(created.campaign_id)
    assert info is not None and info["state"] == "running" and info["run"] == 1
    assert info["funnel"]["queued"] == 50  # queueAhead: no more in flight
    assert campaigns.tick(T0)["queued"] == 0
    sent = 0
    while True:
        sent += send_all_queued(dispatcher, created.campaign_id)
        if (
            campaigns.tick(T0)["queued"] == 0
            and campaigns.get(created.campaign_id)["state"] != "running"
        ):  # type: ignore[index]
            break
    info = campaigns.get(created.campaign_id)
    assert info is not None and info["state"] == "done"
    assert sent == 120 and info["funnel"] == {"sent": 120}
    record = dispatcher.job(next(campaigns.report(created.campaign_id))["jobId"])
    assert record is not None and record.campaign_id == created.campaign_id
    assert record.lane == "bulk"
    envelope = dispatcher.ledger.envelope(record.id)
    assert envelope is not None
    assert envelope.payload["components"][0]["parameters"][0]["text"] == "N0"


def test_fanning_out_the_same_chunk_twice_queues_nobody_twice(
    campaigns: Campaigns, dispatcher: Dispatcher
) -> None:
    created = launched(campaigns, 30)
    # A crash after enqueuing but before the cursor moved: the same chunk again.
    dispatcher.ledger.client.hset(f"waapi:camp:{created.campaign_id}", "cursor", 0)
    campaigns.tick(T0)
    funnel = campaigns.funnel(created.campaign_id, 1)
    assert funnel == {"queued": 30}
    assert dispatcher.ledger.client.zcard("waapi:recent") == 30


def test_pause_holds_queued_jobs_and_resume_releases_them(
    campaigns: Campaigns, dispatcher: Dispatcher
) -> None:
    created = launched(campaigns, 20)
    assert campaigns.pause(created.campaign_id)
    queued = dispatcher.ledger.list(campaign=created.campaign_id, limit=100)
    assert all(dispatcher.ledger.claim(r.id) == "held" for r in queued)
    assert campaigns.funnel(created.campaign_id, 1) == {"retry_wait": 20}
    assert campaigns.tick(T0)["queued"] == 0  # nothing fans out while paused
    assert campaigns.resume(created.campaign_id)
    timers = dispatcher.ledger.client
    due = timers.zrangebyscore("waapi:timers", "-inf", int(datetime.now(UTC).timestamp() * 1000))
    assert len(due) == 20  # every held job is due again


def test_cancel_reaches_queued_jobs_and_the_rest_of_the_audience(
    campaigns: Campaigns, dispatcher: Dispatcher
) -> None:
    created = launched(campaigns, 80)
    assert campaigns.cancel(created.campaign_id)
    for record in dispatcher.ledger.list(campaign=created.campaign_id, limit=100):
        assert dispatcher.ledger.claim(record.id) == "cancelled"
    campaigns.tick(T0)
    assert campaigns.funnel(created.campaign_id, 1) == {"cancelled": 80}


def test_a_cron_campaign_runs_again_and_waits_outside_its_window(
    campaigns: Campaigns, dispatcher: Dispatcher
) -> None:
    cron = spec(
        schedule={"cron": "0 9 * * *", "timezone": "Europe/Berlin"},
        window={"start": "09:00", "end": "10:00"},
    )
    created = campaigns.create(
        cron, rows(io.StringIO(audience(5)), "jsonl"), now=datetime(2026, 3, 28, 0, 0, tzinfo=UTC)
    )
    first = datetime(2026, 3, 28, 8, 0, tzinfo=UTC)  # 09:00 CET
    assert created.next_run == first
    assert campaigns.tick(first)["launched"] == 1
    send_all_queued(dispatcher, created.campaign_id)
    campaigns.tick(first + timedelta(minutes=1))
    info = campaigns.get(created.campaign_id)
    assert info is not None and info["state"] == "scheduled"
    # After the switch to summer time, 09:00 in Berlin is 07:00 UTC.
    assert info["nextRun"] == "2026-03-29T07:00:00+00:00"
    assert campaigns.tick(datetime(2026, 3, 29, 7, 0, tzinfo=UTC))["launched"] == 1
    # The run is late: past 10:00 local it waits, holding what is queued.
    campaigns.tick(datetime(2026, 3, 29, 8, 30, tzinfo=UTC))
    info = campaigns.get(created.campaign_id)
    assert info is not None and (info["state"], info["reason"]) == (
        "paused",
        "outside the send window",
    )
    campaigns.tick(datetime(2026, 3, 30, 7, 15, tzinfo=UTC))  # back inside the next day
    assert campaigns.get(created.campaign_id)["state"] == "running"  # type: ignore[index]


def test_expired_campaigns_cancel_what_is_left(campaigns: Campaigns) -> None:
    created = launched(campaigns, 80, expiresAt=(T0 + timedelta(minutes=5)).isoformat())
    campaigns.tick(T0 + timedelta(minutes=6))
    info = campaigns.get(created.campaign_id)
    assert info is not None and info["state"] == "cancelled"


def test_a_paused_number_pauses_its_running_campaigns(campaigns: Campaigns) -> None:
    one = campaigns.create(
        spec(fromPhoneNos=["+15550000001"]),
        rows(io.StringIO(audience(5)), "jsonl"),
        now=T0 - timedelta(hours=1),
    )
    other = launched(campaigns, 5, fromPhoneNos=["+15550000002"])
    assert campaigns.pause_for_number("+15550000001", "number paused: 131048") == [one.campaign_id]
    assert campaigns.get(one.campaign_id)["state"] == "paused"  # type: ignore[index]
    assert campaigns.get(other.campaign_id)["state"] == "running"  # type: ignore[index]


def test_a_campaign_throttle_is_a_limit_on_its_jobs(
    campaigns: Campaigns, dispatcher: Dispatcher
) -> None:
    from dispatcher.engine.limiter import Limiter

    created = launched(campaigns, 3, throttlePerSecond=5)
    [record] = dispatcher.ledger.list(campaign=created.campaign_id, limit=1)
    envelope = dispatcher.ledger.envelope(record.id)
    assert envelope is not None
    limits = {
        lim.name: lim
        for lim in Limiter(dispatcher.ledger.client, dispatcher.settings).limits_for(envelope)
    }
    assert limits[f"camp:{created.campaign_id}"].rate == 5


def test_a_job_sleeping_for_its_slot_is_held_when_the_campaign_pauses(
    campaigns: Campaigns, dispatcher: Dispatcher
) -> None:
    from dispatcher.engine.clients import Clients
    from dispatcher.engine.limiter import Limiter
    from dispatcher.engine.worker import Worker

    created = launched(campaigns, 2, throttlePerSecond=1)
    naps: list[float] = []

    def nap(seconds: float) -> None:  # the campaign is paused while the worker waits
        naps.append(seconds)
        campaigns.pause(created.campaign_id)

    settings = dispatcher.settings
    worker = Worker(
        settings,
        dispatcher.ledger,
        Clients(settings, 2),
        Limiter(dispatcher.ledger.client, settings),
        sleep=nap,
    )
    client = dispatcher.ledger.client
    first, second = (
        stored(dispatcher.ledger, r.id)
        for r in sorted(dispatcher.ledger.list(campaign=created.campaign_id), key=lambda r: r.id)
    )
    client.hset(f"waapi:camp:{created.campaign_id}", "state", "running")
    # Take the first slot of the campaign's 1/s throttle, so the second job has to wait.
    Limiter(client, settings).admit(JobEnvelope.model_validate(first))
    assert worker.handle(second) == "retry_wait"
    assert naps and 0 < naps[0] <= 1.0
    assert client.sismember(f"waapi:camp:{created.campaign_id}:held", second["id"])
    assert dispatcher.job(second["id"]).attempts == 0  # type: ignore[union-attr]


def test_the_funnel_counts_failures_and_waits_by_metas_code(
    campaigns: Campaigns, dispatcher: Dispatcher
) -> None:
    created = launched(campaigns, 3)
    ids = sorted(r.id for r in dispatcher.ledger.list(campaign=created.campaign_id))
    capped = {"status": 400, "code": 131049, "message": "(#131049) marketing cap"}
    for job_id, state in zip(ids, ("retry_wait", "retry_wait", "failed"), strict=True):
        claim = dispatcher.ledger.claim(job_id)
        assert isinstance(claim, Claim)
        next_ms = int((time.time() + 3600) * 1000)
        assert dispatcher.ledger.finish(
            job_id, claim.attempt, state, error=capped, next_attempt_ms=next_ms
        )
    funnel = campaigns.funnel(created.campaign_id, 1)
    assert funnel == {"retry_wait": 2, "failed": 1, "retries:131049": 2, "failed:131049": 1}


def test_a_billable_message_counts_once_in_its_campaigns_funnel(
    campaigns: Campaigns, dispatcher: Dispatcher
) -> None:
    created = launched(campaigns, 1)
    [record] = dispatcher.ledger.list(campaign=created.campaign_id)
    claim = dispatcher.ledger.claim(record.id)
    assert isinstance(claim, Claim)
    assert dispatcher.ledger.finish(record.id, claim.attempt, "sent", wamid="wamid.BILL1")
    billing = {"billable": True, "category": "marketing", "model": "CBP", "conversation": "c1"}
    for status in ("sent", "delivered", "delivered"):  # Meta repeats pricing; so do retries
        dispatcher.ledger.apply_status("wamid.BILL1", status, billing=billing)
    funnel = campaigns.funnel(created.campaign_id, 1)
    assert funnel == {"delivered": 1, "billable:marketing": 1}
    job = dispatcher.job(record.id)
    assert job is not None and job.pricing == {
        "category": "marketing",
        "billable": True,
        "model": "CBP",
        "conversation": "c1",
    }


def test_prices_estimate_what_a_campaign_costs(
    campaigns: Campaigns, dispatcher: Dispatcher, redis_url: str
) -> None:
    """PRICES turns Meta's billable messages into an estimated cost: by category and the
    recipient's country calling code, once per message, on the job, in the funnel and
    in the metrics' hash."""
    from dispatcher.sandbox.webhooks import status_payload
    from dispatcher.webhooks.notification import parse_envelope
    from dispatcher.webhooks.receiver import WebhookReceiver

    prices = {"marketing": {"+1": 0.025, "*": 0.05}}
    settings = make_settings(redis_url, prices=json.dumps(prices))
    receiver = WebhookReceiver(settings, dispatcher.ledger)
    created = launched(campaigns, 2)
    records = dispatcher.ledger.list(campaign=created.campaign_id)
    for n, record in enumerate(records):
        claim = dispatcher.ledger.claim(record.id)
        assert isinstance(claim, Claim)
        wamid = f"wamid.COST{n}"
        assert dispatcher.ledger.finish(record.id, claim.attempt, "sent", wamid=wamid)
        sender = str(record.from_phone_no)
        for status in ("sent", "delivered"):
            payload = status_payload(sender, wamid, record.to, status, category="marketing")
            receiver.apply(parse_envelope(payload))
    funnel = campaigns.funnel(created.campaign_id, 1)
    assert funnel["billable:marketing"] == 2
    assert funnel["cost_micros"] == 2 * 25_000  # two +1 recipients at 0.025, once each
    job = dispatcher.job(records[0].id)
    assert job is not None and job.pricing is not None
    assert job.pricing["estimatedCost"] == 0.025
    total = dispatcher.ledger.client.hgetall("waapi:m:cost")
    assert sum(int(v) for v in total.values()) == 50_000
    # The status screen gives the same totals.
    from rich.console import Console

    from dispatcher.cli.status_cmd import render
    from dispatcher.ops.status import status_report
    from dispatcher.telemetry.metrics import LedgerCollector

    collector = LedgerCollector(dispatcher.ledger.client, settings)
    report = status_report(collector, settings, {}, sample_s=0, sleep=lambda _: None)
    assert report["costs"] == {"billable": {"marketing": 2}, "estimatedCost": {"marketing": 0.05}}
    screen = Console(file=io.StringIO(), width=120)
    render(report, screen)
    assert "billable messages: marketing 2; estimated cost 0.0500" in screen.file.getvalue()  # type: ignore[attr-defined]


def test_a_campaign_is_priced_before_it_launches(redis_url: str) -> None:
    """With PRICES set, creating a campaign estimates a run's cost from its audience
    (each recipient's country code, the message's expected category) and says how many
    recipients no price covers."""
    prices = {"marketing": {"+1": 0.025, "+91": 0.0107}, "utility": {"*": 0.004}}
    settings = make_settings(redis_url, prices=json.dumps(prices))
    with Dispatcher(settings) as priced:
        campaigns = Campaigns(priced)
        rows_text = "".join(
            json.dumps({"to": to, "name": "A", "awb": "1"}) + "\n"
            for to in ("+15551230001", "+15551230002", "+919876543210", "+447700900123")
        )
        marketing = campaigns.create(spec(), rows(io.StringIO(rows_text), "jsonl"))
        info = campaigns.get(marketing.campaign_id)
        assert info is not None
        assert info["estimatedCostPerRun"] == pytest.approx(0.025 * 2 + 0.0107)
        assert info["unpricedRecipients"] == 1  # +44: no marketing price for it
        utility = campaigns.create(
            spec(pricingCategory="utility"), rows(io.StringIO(rows_text), "jsonl")
        )
        info = campaigns.get(utility.campaign_id)
        assert info is not None and info["estimatedCostPerRun"] == pytest.approx(4 * 0.004)
    unpriced = Campaigns(Dispatcher(make_settings(redis_url)))
    plain = unpriced.create(spec(), rows(io.StringIO(rows_text), "jsonl"))
    assert unpriced.get(plain.campaign_id)["estimatedCostPerRun"] is None  # type: ignore[index]
