"""The ledger scripts on a real Redis, with a settable clock: claim, outcomes, the pump
and the sweeper, idempotency, events, listing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from dispatcher.engine.limiter import Limiter
from dispatcher.job.envelope import JobEnvelope
from dispatcher.ledger import schema
from dispatcher.ledger.jobs import Claim, Ledger
from dispatcher.ledger.scripts import now
from dispatcher.producer.api import Dispatcher
from tests.support.envelopes import stored
from tests.support.stack import make_settings
from tests.support.waiting import FakeClock

FROM, TO = "+15550000001", "+15551230001"
QUEUE_TX = "waapi.cloud.15550000001.tx"
QUEUE_BULK = "waapi.cloud.15550000001.bulk"

pytestmark = pytest.mark.fake_clock  # the clock and dispatcher fixtures


@pytest.fixture
def dispatcher(redis_url: str, clock: FakeClock) -> Dispatcher:
    settings = make_settings(redis_url, job_lease_s=30)
    return Dispatcher(settings, redis.Redis.from_url(redis_url), clock)


@pytest.fixture
def ledger(dispatcher: Dispatcher) -> Ledger:
    return dispatcher.ledger


def hello(dispatcher: Dispatcher, **options: Any) -> str:
    return dispatcher.send_template(TO, FROM, "hello_world", "en", **options)


def called(ledger: Ledger, job_id: str) -> Claim:
    """Claim the job and go to the gateway with it, as a worker does (admission marks
    the claim's attempt as gone to the gateway: ``go``)."""
    claim = ledger.claim(job_id)
    assert isinstance(claim, Claim)
    ledger.client.hset(schema.job(job_id), "go", claim.attempt)
    return claim


def messages(client: redis.Redis, queue: str) -> list[dict[str, Any]]:
    """The queue's messages, oldest first, decoded as a Celery worker would."""
    out = []
    for raw in reversed(client.lrange(queue, 0, -1)):
        message = json.loads(raw)
        _args, kwargs, _embed = json.loads(message["body"])
        out.append({"task": message["headers"]["task"], "kwargs": kwargs, "message": message})
    return out


def test_enqueue_records_the_job_and_publishes_one_celery_message(
    dispatcher: Dispatcher, redis_client: redis.Redis
) -> None:
    job_id = hello(dispatcher)
    record = dispatcher.job(job_id)
    assert record is not None
    assert (record.state, record.attempts, record.queue) == ("queued", 0, QUEUE_TX)
    [msg] = messages(redis_client, QUEUE_TX)
    assert msg["task"] == "waapi.send"
    assert msg["message"]["properties"]["delivery_info"]["routing_key"] == QUEUE_TX
    assert msg["kwargs"] == {"job_id": job_id}  # the envelope is kept once, in the record
    envelope = dispatcher.ledger.envelope(job_id)
    assert envelope is not None and envelope.id == job_id
    assert envelope.request().to_gateway() == {
        "to": TO,
        "fromPhoneNo": FROM,
        "name": "hello_world",
        "language": "en",
    }
    assert "secr_" not in json.dumps(msg)


def _every_option(job_id: str, now_s: float, *, scheduled: bool) -> JobEnvelope:
    """An envelope with every field set (a time at a microsecond the ledger keeps to the
    millisecond)."""
    soon = datetime.fromtimestamp(int(now_s) + 3600, UTC) + timedelta(microseconds=123456)
    return JobEnvelope(
        id=job_id,
        channel="qr",
        type="text",
        to=TO,
        from_phone_no=FROM,
        session_id="sess-1",
        payload={"body": "hi \u00e9", "previewUrl": True},
        contact={"name": "Ann"},
        lane="bulk",
        idempotency_key=f"order-{job_id[-1]}",
        not_before=soon if scheduled else None,
        expires_at=soon + timedelta(days=1),
        campaign_id="camp-1",
        fallback_template={"name": "hello_world", "language": "en"},
        campaign_rate=2.5,
    )


def _to_the_ms(envelope: JobEnvelope) -> JobEnvelope:
    def ms(at: datetime | None) -> datetime | None:
        return None if at is None else at.replace(microsecond=at.microsecond // 1000 * 1000)

    return envelope.model_copy(
        update={"not_before": ms(envelope.not_before), "expires_at": ms(envelope.expires_at)}
    )


def test_a_record_keeps_each_value_once_and_gives_back_the_whole_envelope(
    ledger: Ledger, redis_client: redis.Redis, clock: FakeClock
) -> None:
    scheduled = _every_option("job-a", clock(), scheduled=True)
    queued = _every_option("job-b", clock(), scheduled=False)
    assert ledger.enqueue([scheduled, queued]) == ["job-a", "job-b"]
    assert ledger.envelope("job-a") == _to_the_ms(scheduled)
    claim = ledger.claim("job-b")
    assert isinstance(claim, Claim) and claim.envelope() == _to_the_ms(queued)
    # The record's own columns are not repeated in its 'env', nor its id anywhere.
    kept = redis_client.hgetall(schema.job("job-b"))
    assert json.loads(kept[b"env"]).keys() == {
        "payload", "contact", "fallbackTemplate", "campaignRate"
    }  # fmt: skip
    assert b"job-b" not in b"".join(kept.values())
    assert ledger.envelope("no-such-job") is None


def test_a_record_kept_whole_before_reads_the_same(
    ledger: Ledger, redis_client: redis.Redis, clock: FakeClock
) -> None:
    """Records written before the record kept its columns once hold the whole envelope in
    'env' (and their id): they are claimed and read as they were written."""
    envelope = _every_option("job-old", clock(), scheduled=False)
    ledger.enqueue([envelope])
    redis_client.hset(schema.job("job-old"), mapping={"env": envelope.to_json(), "id": "job-old"})
    assert ledger.envelope("job-old") == envelope  # to the microsecond, as it was kept
    claim = ledger.claim("job-old")
    assert isinstance(claim, Claim) and claim.envelope() == envelope


def test_an_idempotency_key_queues_once(dispatcher: Dispatcher, redis_client: redis.Redis) -> None:
    first = dispatcher.enqueue(
        "cloud",
        "template",
        {"to": TO, "fromPhoneNo": FROM, "name": "hello_world", "language": "en"},
        idempotency_key="order-1",
    )
    second = dispatcher.enqueue(
        "cloud",
        "template",
        {"to": TO, "fromPhoneNo": FROM, "name": "hello_world", "language": "en"},
        idempotency_key="order-1",
    )
    assert not first.duplicate and second.duplicate
    assert second.job_id == first.job_id
    assert redis_client.llen(QUEUE_TX) == 1
    assert len(dispatcher.jobs()) == 1


def test_claim_is_exclusive_and_fenced_by_attempt(ledger: Ledger, dispatcher: Dispatcher) -> None:
    job_id = hello(dispatcher)
    claim = ledger.claim(job_id)
    assert isinstance(claim, Claim) and claim.attempt == 1
    assert ledger.claim(job_id) == "sending"  # a duplicate delivery is refused
    assert ledger.finish(job_id, 1, "sent", wamid="wamid.A")
    assert not ledger.finish(job_id, 1, "failed", error={"message": "late"})
    record = ledger.get(job_id)
    assert record is not None and (record.state, record.wamid) == ("sent", "wamid.A")
    assert ledger.by_wamid("wamid.A") == record
    assert ledger.claim(job_id) == "sent"


def test_retry_wait_is_published_again_by_the_tick_when_due(
    ledger: Ledger, dispatcher: Dispatcher, clock: FakeClock, redis_client: redis.Redis
) -> None:
    job_id = hello(dispatcher)
    redis_client.delete(QUEUE_TX)
    claim = ledger.claim(job_id)
    assert isinstance(claim, Claim)
    next_ms = int((clock.now + 5) * 1000)
    ledger.finish(
        job_id, 1, "retry_wait", error={"status": 503, "message": "x"}, next_attempt_ms=next_ms
    )
    assert ledger.claim(job_id) == "early"
    assert ledger.tick().published == 0
    clock.advance(5)
    assert ledger.tick().published == 1
    record = ledger.get(job_id)
    assert record is not None and record.state == "queued"
    assert [m["kwargs"]["job_id"] for m in messages(redis_client, QUEUE_TX)] == [job_id]
    second = ledger.claim(job_id)
    assert isinstance(second, Claim) and second.attempt == 2


def test_a_job_sent_after_failures_keeps_them_as_history_not_as_its_error(
    ledger: Ledger, dispatcher: Dispatcher, clock: FakeClock
) -> None:
    job_id = hello(dispatcher)
    failures = [
        {"status": None, "code": None, "message": "could not connect to the gateway"},
        {"status": 503, "code": None, "message": "Service Unavailable"},
    ]
    for attempt, error in enumerate(failures, start=1):
        claim = ledger.claim(job_id)
        assert isinstance(claim, Claim) and claim.attempt == attempt
        ledger.finish(job_id, attempt, "retry_wait", error=error, next_attempt_ms=0)
        clock.advance(1)
        record = ledger.get(job_id)
        assert record is not None and record.error == error  # while not sent: the last one
    claim = ledger.claim(job_id)
    assert isinstance(claim, Claim)
    ledger.finish(job_id, 3, "sent", wamid="wamid.H")
    ledger.apply_status("wamid.H", "read")
    record = ledger.get(job_id)
    assert record is not None and (record.state, record.error) == ("read", None)
    assert [(h["attempt"], h["state"], h.get("status"), h["message"]) for h in record.history] == [
        (1, "retry_wait", None, "could not connect to the gateway"),
        (2, "retry_wait", 503, "Service Unavailable"),
    ]
    assert record.to_dict()["history"][0]["at"].endswith("+00:00")


@pytest.mark.parametrize(
    ("lane", "policy_state"), [("transactional", "queued"), ("bulk", "unknown")]
)
def test_an_expired_lease_follows_the_lanes_ambiguity_policy(
    ledger: Ledger,
    dispatcher: Dispatcher,
    clock: FakeClock,
    redis_client: redis.Redis,
    lane: str,
    policy_state: str,
) -> None:
    job_id = hello(dispatcher, lane=lane)
    queue = QUEUE_TX if lane == "transactional" else QUEUE_BULK
    redis_client.delete(queue)
    called(ledger, job_id)
    clock.advance(31)  # the worker died holding the lease
    result = ledger.tick()
    assert (result.resent, result.held) == ((1, 0) if lane == "transactional" else (0, 1))
    record = ledger.get(job_id)
    assert record is not None and record.state == policy_state and record.ambiguous == 1
    assert redis_client.llen(queue) == (1 if lane == "transactional" else 0)
    assert ledger.stats()["ambiguous"] == 1
    # The dead worker's late answer still counts when it says the message went out.
    assert ledger.finish(job_id, 1, "sent", wamid="wamid.LATE")
    assert ledger.get(job_id).state == "sent"  # type: ignore[union-attr]


def test_not_before_schedules_and_expiry_expires(
    ledger: Ledger, dispatcher: Dispatcher, clock: FakeClock, redis_client: redis.Redis
) -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime.fromtimestamp(clock.now, UTC)
    later = hello(dispatcher, not_before=now + timedelta(seconds=60))
    otp = hello(dispatcher, expires_at=now + timedelta(seconds=10))
    assert ledger.get(later).state == "scheduled"  # type: ignore[union-attr]
    assert [m["kwargs"]["job_id"] for m in messages(redis_client, QUEUE_TX)] == [otp]
    clock.advance(11)
    assert ledger.claim(otp) == "expired"
    clock.advance(50)
    assert ledger.tick().published == 1
    assert isinstance(ledger.claim(later), Claim)


def test_attempts_are_capped_against_poison_loops(redis_url: str, clock: FakeClock) -> None:
    settings = make_settings(redis_url, retry_max_attempts=2)
    dispatcher = Dispatcher(settings, redis.Redis.from_url(redis_url), clock)
    job_id = hello(dispatcher)
    for attempt in (1, 2):
        claim = dispatcher.ledger.claim(job_id)
        assert isinstance(claim, Claim) and claim.attempt == attempt
        dispatcher.ledger.finish(
            job_id, attempt, "retry_wait", next_attempt_ms=int(clock.now * 1000)
        )
    assert dispatcher.ledger.claim(job_id) == "dead"


def test_every_change_is_on_the_events_stream(
    ledger: Ledger, dispatcher: Dispatcher, redis_client: redis.Redis
) -> None:
    job_id = hello(dispatcher, lane="bulk")
    ledger.claim(job_id)
    ledger.finish(job_id, 1, "failed", error={"status": 400, "code": 131026, "message": "m"})
    events = [
        {k.decode(): v.decode() for k, v in fields.items()}
        for _, fields in redis_client.xrange(schema.EVENTS)
    ]
    assert [(e["job"], e["state"]) for e in events] == [
        (job_id, "queued"),
        (job_id, "sending"),
        (job_id, "failed"),
    ]
    assert events[0]["number"] == FROM and events[0]["lane"] == "bulk"
    assert events[2]["code"] == "131026"
    assert all(TO not in json.dumps(e) for e in events)  # no recipient on the stream


def test_listing_by_state_and_number(
    ledger: Ledger, dispatcher: Dispatcher, clock: FakeClock
) -> None:
    a = hello(dispatcher)
    clock.advance(0.001)  # newest first is by creation time (ms)
    b = dispatcher.send_template(TO, "+15550000002", "hello_world", "en")
    ledger.claim(a)
    ledger.finish(a, 1, "sent", wamid="w1")
    assert [r.id for r in dispatcher.jobs()] == [b, a]
    assert [r.id for r in dispatcher.jobs(state="sent")] == [a]
    assert [r.id for r in dispatcher.jobs(number="+15550000002")] == [b]
    assert dispatcher.jobs(state="failed") == []


@pytest.fixture
def held(
    ledger: Ledger, dispatcher: Dispatcher, clock: FakeClock, redis_client: redis.Redis
) -> str:
    """A bulk job whose worker died mid-send: held as unknown."""
    job_id = hello(dispatcher, lane="bulk")
    redis_client.delete(QUEUE_BULK)
    called(ledger, job_id)
    clock.advance(31)
    assert ledger.tick().held == 1
    assert ledger.get(job_id).state == "unknown"  # type: ignore[union-attr]
    return job_id


def test_a_webhook_for_an_unowned_wamid_resolves_the_unknown_job(ledger: Ledger, held: str) -> None:
    state, job_id = ledger.apply_status("wamid.AFTER", "delivered", number=FROM, recipient=TO)
    assert (state, job_id) == ("delivered", held)
    record = ledger.get(held)
    assert record is not None and (record.state, record.wamid) == ("delivered", "wamid.AFTER")
    assert ledger.by_wamid("wamid.AFTER") == record
    assert ledger.stats()["reconciled"] == 1


def test_a_webhook_that_came_first_resolves_the_job_when_it_is_held(
    ledger: Ledger, dispatcher: Dispatcher, clock: FakeClock, redis_client: redis.Redis
) -> None:
    job_id = hello(dispatcher, lane="bulk")
    called(ledger, job_id)
    assert ledger.apply_status("wamid.EARLY", "sent", number=FROM, recipient=TO) == ("parked", None)
    clock.advance(31)
    ledger.tick()
    record = ledger.get(job_id)
    assert record is not None and (record.state, record.wamid) == ("sent", "wamid.EARLY")


def test_no_webhook_means_not_sent_and_it_goes_again(
    ledger: Ledger, held: str, clock: FakeClock, redis_client: redis.Redis
) -> None:
    clock.advance(299)
    assert ledger.tick().resent == 0
    clock.advance(2)  # UNKNOWN_RECHECK_S (300 s) after it was held
    assert ledger.tick().resent == 1
    assert ledger.get(held).state == "queued"  # type: ignore[union-attr]
    assert [m["kwargs"]["job_id"] for m in messages(redis_client, QUEUE_BULK)] == [held]


def test_a_wamid_another_job_owns_does_not_resolve_the_unknown_one(
    ledger: Ledger, dispatcher: Dispatcher, clock: FakeClock
) -> None:
    other = hello(dispatcher, lane="bulk")
    claim = ledger.claim(other)
    assert isinstance(claim, Claim)
    ledger.apply_status("wamid.OTHER", "sent", number=FROM, recipient=TO)  # came first
    ledger.finish(other, claim.attempt, "sent", wamid="wamid.OTHER")  # then its owner
    clock.advance(0.001)
    job_id = hello(dispatcher, lane="bulk")
    called(ledger, job_id)
    clock.advance(31)
    ledger.tick()
    assert ledger.get(job_id).state == "unknown"  # type: ignore[union-attr]


def test_take_pops_the_oldest_message_and_claims_its_job_in_one_step(
    dispatcher: Dispatcher, ledger: Ledger, redis_client: redis.Redis
) -> None:
    queue = "waapi.cloud.15550000001.tx"
    first, second = hello(dispatcher), hello(dispatcher)
    taken = ledger.take(queue)
    assert isinstance(taken, Claim) and taken.job_id == first and taken.attempt == 1
    assert taken.backlog == 1  # what is left behind it: the send loop adds lanes by it
    assert taken.envelope().id == first
    assert ledger.get(first).state == "sending"  # claimed, with its lease
    assert redis_client.llen(queue) == 1
    # A message whose job has already moved on is taken and dropped, as a duplicate.
    ledger.finish(second, 0, "sent", wamid="wamid.x")  # a late answer of an older attempt
    assert ledger.get(second).state == "sent"
    assert ledger.take(queue) == "sent"
    assert redis_client.llen(queue) == 0
    assert ledger.take(queue) is None  # empty


@pytest.mark.parametrize("scripts_lost", [False, True])
def test_an_outcome_and_the_next_take_go_in_one_round_trip(
    dispatcher: Dispatcher, ledger: Ledger, redis_client: redis.Redis, scripts_lost: bool
) -> None:
    queue = "waapi.cloud.15550000001.tx"
    first, second = hello(dispatcher), hello(dispatcher)
    taken = ledger.take(queue, "host/1/w", "1")
    assert isinstance(taken, Claim) and taken.job_id == first
    if scripts_lost:  # Redis restarted without its functions: loaded, then called again
        redis_client.function_flush()
    next_claim = now(
        ledger.finish_then(
            first, taken.attempt, "sent", ("take", queue), "host/1/w", "2", wamid="wamid.first"
        )
    )
    assert ledger.get(first).state == "sent" and ledger.get(first).wamid == "wamid.first"  # type: ignore[union-attr]
    assert isinstance(next_claim, Claim) and next_claim.job_id == second
    assert next_claim.backlog == 0
    assert next_claim.token == "2" and ledger.get(second).state == "sending"  # type: ignore[union-attr]
    assert now(ledger.finish_then(second, 1, "sent", ("take", queue), "host/1/w", "3")) is None
    assert ledger.get(second).state == "sent"  # type: ignore[union-attr]
    # A batch's next job is claimed by id the same way.
    third, fourth = hello(dispatcher, lane="bulk"), hello(dispatcher, lane="bulk")
    claim = ledger.claim(third, "host/1/w", "4")
    assert isinstance(claim, Claim)
    claimed = now(
        ledger.finish_then(third, claim.attempt, "sent", ("claim", fourth), "host/1/w", "5")
    )
    assert isinstance(claimed, Claim) and claimed.job_id == fourth and claimed.token == "5"
    assert ledger.get(third).state == "sent" and ledger.get(fourth).state == "sending"  # type: ignore[union-attr]
    again = now(
        ledger.finish_then(fourth, claimed.attempt, "sent", ("claim", third), "host/1/w", "6")
    )
    assert again == "sent"  # the reason not to send, as claim gives it


def test_a_draining_worker_goes_on_with_any_ready_queue_its_group_serves(
    dispatcher: Dispatcher, ledger: Ledger, redis_client: redis.Redis
) -> None:
    """A queue the scripts publish to is marked ready (transactional lanes only); take_any
    takes from a ready queue the caller's group serves, and leaves the others alone."""
    other_tx = "waapi.cloud.15550000002.tx"
    first = hello(dispatcher)
    second = dispatcher.send_template(TO, "+15550000002", "hello_world", "en")
    hello(dispatcher, lane="bulk")  # bulk travels in batches: not drained
    assert redis_client.smembers(schema.READY) == {QUEUE_TX.encode(), other_tx.encode()}
    only_other = ledger.serve([other_tx])
    taken = ledger.take_any(only_other, "host/1/w", "1")
    assert isinstance(taken, Claim) and taken.job_id == second
    assert ledger.take_any(only_other, "host/1/w", "2") is None  # the other is not served
    assert redis_client.smembers(schema.READY) == {QUEUE_TX.encode()}  # the empty one left
    assert ledger.get(first).state == "queued" and redis_client.llen(QUEUE_TX) == 1  # type: ignore[union-attr]
    both = ledger.serve([QUEUE_TX, other_tx])
    assert both != only_other and ledger.serve([other_tx, QUEUE_TX]) == both
    assert redis_client.ttl(schema.served(both)) > 0  # a group gone for good is forgotten
    claimed = now(
        ledger.finish_then(
            second, taken.attempt, "sent", ("take", "", both), "host/1/w", "3", wamid="wamid.2"
        )
    )
    assert ledger.get(second).state == "sent"  # type: ignore[union-attr]
    assert isinstance(claimed, Claim) and claimed.job_id == first and claimed.token == "3"
    assert ledger.take_any(both) is None and not redis_client.smembers(schema.READY)
    assert ledger.stats()["taken_elsewhere"] == 2
    # A Redis that lost the group's set has it again from the next heartbeat's serve.
    redis_client.delete(schema.served(both))
    third = hello(dispatcher)
    assert ledger.take_any(both) is None  # not known to serve it: left for Celery
    assert ledger.serve([QUEUE_TX, other_tx]) == both
    again = ledger.take_any(both)
    assert isinstance(again, Claim) and again.job_id == third


def test_a_take_that_finds_its_queue_empty_goes_on_with_its_group_in_the_same_call(
    dispatcher: Dispatcher, ledger: Ledger, redis_client: redis.Redis
) -> None:
    """A take naming its group's digest takes from its own queue first and, when that is
    empty, from any ready queue of the group: one script where a take and a take_any
    found nothing. A job from another number's queue is not admitted with the claim (the
    plan was for the taker's queue): the worker admits it itself."""
    other_tx = "waapi.cloud.15550000002.tx"
    group = ledger.serve([QUEUE_TX, other_tx])
    mine = hello(dispatcher)
    theirs = dispatcher.send_template(TO, "+15550000002", "hello_world", "en")
    plan = Limiter(redis_client, ledger.settings).queue_plan(QUEUE_TX)
    first = now(ledger.take_steps(("take", QUEUE_TX, group), "host/1/w", "1", plan))
    assert isinstance(first, Claim) and first.job_id == mine  # its own queue first
    assert first.admission is not None
    redis_client.config_resetstat()
    second = now(ledger.take_steps(("take", QUEUE_TX, group), "host/1/w", "2", plan))
    assert isinstance(second, Claim) and second.job_id == theirs
    assert second.admission is None  # planned for the other number: admitted apart
    assert redis_client.info("commandstats")["cmdstat_fcall"]["calls"] == 1
    assert ledger.stats()["taken_elsewhere"] == 1
    assert now(ledger.take_steps(("take", QUEUE_TX, group), "host/1/w", "3", plan)) is None
    assert not redis_client.smembers(schema.READY)


def test_take_leaves_messages_it_cannot_judge_for_celery(
    dispatcher: Dispatcher, ledger: Ledger, redis_client: redis.Redis
) -> None:
    queue = "waapi.cloud.15550000001.tx"
    job = hello(dispatcher)
    redis_client.rpush(queue, b"not json at all")  # at the taking end
    assert ledger.take(queue) is None
    assert redis_client.lrange(queue, -1, -1) == [b"not json at all"]  # back where it was
    redis_client.rpop(queue)
    # A message by task name for a job with no record yet: Celery's path adopts those
    # (another app's envelope) or refuses them (an id the ledger does not know).
    foreign = json.loads(redis_client.lindex(queue, 0))
    envelope = stored(ledger, job)
    for kwargs in ({"job": {**envelope, "id": "from-another-app"}}, {"job_id": "unknown"}):
        body = json.loads(foreign["body"])
        body[1] = kwargs
        redis_client.rpush(queue, json.dumps({**foreign, "body": json.dumps(body)}))
        assert ledger.take(queue) is None
        assert redis_client.llen(queue) == 2
        assert json.loads(json.loads(redis_client.lindex(queue, -1))["body"])[1] == kwargs
        redis_client.rpop(queue)
    assert ledger.get(job).state == "queued"
    assert ledger.take(queue) is not None  # ours, by id


def test_a_templates_status_and_quality_arriving_at_once_both_stay(redis_url: str) -> None:
    """Two webhook requests about one template at the same moment (its status and its
    quality) each lay their change over what was known; neither is lost."""
    import threading

    from dispatcher.ledger.templates import Templates

    clients = [redis.Redis.from_url(redis_url) for _ in range(2)]
    for round_ in range(30):
        start = threading.Barrier(2)

        def change(client: redis.Redis, field: str, value: str, start: threading.Barrier) -> None:
            start.wait()
            Templates(client).record("promo", "en_US", **{field: value})

        threads = [
            threading.Thread(target=change, args=(clients[0], "status", f"S{round_}", start)),
            threading.Thread(target=change, args=(clients[1], "quality", f"Q{round_}", start)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        state = Templates(clients[0]).get("promo", "en_US")
        assert state is not None and (state.status, state.quality) == (f"S{round_}", f"Q{round_}")
