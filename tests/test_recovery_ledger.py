"""Recovery by liveness on a real Redis with a settable clock: a dead worker's claims,
messages no live worker holds, lost messages found by publication tracking (and a
backlog of any age never published twice), the outage guard, and claims whose answer
was lost given back."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from dispatcher.engine.limiter import Limiter
from dispatcher.ledger import schema
from dispatcher.ledger.jobs import Claim, Ledger, Recovered
from dispatcher.producer.api import Dispatcher
from tests.support.waiting import FakeClock

FROM, TO = "+15550000001", "+15551230001"
QUEUE_TX = "waapi.cloud.15550000001.tx"
QUEUE_BULK = "waapi.cloud.15550000001.bulk"
DEAD_S = 15.0  # WORKER_DEAD_AFTER_S's default

pytestmark = pytest.mark.fake_clock  # the clock and dispatcher fixtures


@pytest.fixture
def ledger(dispatcher: Dispatcher, clock: FakeClock) -> Ledger:
    ledger = dispatcher.ledger
    for _ in range(int(DEAD_S)):  # passes every second: judgements may start
        ledger.recover()
        clock.advance(1)
    return ledger


def hello(dispatcher: Dispatcher, to: str = TO, **options: Any) -> str:
    return dispatcher.send_template(to, FROM, "hello_world", "en", **options)


def alive(client: redis.Redis, worker: str, at_s: float, tags: tuple[str, ...] = ()) -> None:
    """A heartbeat of ``worker`` at ``at_s`` (unix s) holding ``tags``."""
    client.zadd(schema.WORKERS, {worker: at_s})
    client.delete(schema.holds(worker))
    if tags:
        client.sadd(schema.holds(worker), *tags)


def recover(
    ledger: Ledger,
    clock: FakeClock,
    client: redis.Redis,
    seconds: int = 1,
    beating: dict[str, tuple[str, ...]] | None = None,
) -> Recovered:
    """``seconds`` of beat's passes, one a second (the publication sweep due each time),
    while the ``beating`` workers heartbeat holding their tags; the passes' sum."""
    totals = [0] * 6
    result = None
    for _ in range(seconds):
        clock.advance(1)
        for worker, tags in (beating or {}).items():
            alive(client, worker, clock.now, tags)
        client.delete(schema.SWEPT)
        result = ledger.recover()
        for n, value in enumerate(
            (
                result.dead_workers,
                result.claims_resent,
                result.claims_held,
                result.messages_restored,
                result.republished,
                result.claims_returned,
            )
        ):
            totals[n] += value
    assert result is not None
    return Recovered(*totals[:5], waiting=result.waiting, claims_returned=totals[5])


def deliver(client: redis.Redis, queue: str, delivered_at_s: float) -> str:
    """Do what kombu's consumer does: BRPOP the oldest message and keep it in the
    unacked hash and index. Returns its delivery tag."""
    raw = client.rpop(queue)
    message = json.loads(raw)
    message["headers"]["timelimit"] = [None, None]  # as Celery's own messages carry
    tag = message["properties"]["delivery_tag"]
    client.zadd(schema.KOMBU_UNACKED_INDEX, {tag: delivered_at_s})
    client.hset(
        schema.KOMBU_UNACKED, tag, json.dumps([message, "", queue])
    )  # kombu's own layout: json.dumps([message, exchange, routing_key])
    return str(tag)


def test_a_dead_workers_claims_follow_the_lane_policy_at_once(
    dispatcher: Dispatcher, ledger: Ledger, clock: FakeClock, redis_client: redis.Redis
) -> None:
    otp, promo = hello(dispatcher), hello(dispatcher, to="+15551230002", lane="bulk")
    for queue in (QUEUE_TX, QUEUE_BULK):
        redis_client.delete(queue)  # taken by the worker (as take.lua does)
    limiter = Limiter(redis_client, dispatcher.settings)
    for job_id in (otp, promo):
        claim = ledger.claim(job_id, "host/1/dead", "7")
        assert isinstance(claim, Claim)
        envelope = claim.envelope()
        assert limiter.admit(envelope, attempt=claim.attempt).status == "ok"  # the call went
        assert redis_client.hget(schema.job(job_id), "go") == b"1"
    unsent = hello(dispatcher, to="+15551230004", lane="bulk")
    redis_client.delete(QUEUE_BULK)
    assert isinstance(ledger.claim(unsent, "host/1/dead", "8"), Claim)  # died before the call
    other = hello(dispatcher, to="+15551230003")
    redis_client.delete(QUEUE_TX)
    assert isinstance(ledger.claim(other, "host/2/alive", "1"), Claim)
    alive(redis_client, "host/1/dead", clock.now)  # its last heartbeat: then SIGKILL
    beating = {"host/2/alive": ()}
    early = recover(ledger, clock, redis_client, int(DEAD_S) - 1, beating)
    assert early.dead_workers == 0  # silent, not yet for long enough
    result = recover(ledger, clock, redis_client, 1, beating)  # silent for DEAD_S
    assert (result.dead_workers, result.claims_resent, result.claims_held) == (1, 1, 1)
    assert result.claims_returned == 1
    never_sent = ledger.get(unsent)
    assert never_sent is not None
    assert (never_sent.state, never_sent.attempts, never_sent.ambiguous) == ("queued", 0, 0)
    assert redis_client.llen(QUEUE_BULK) == 1  # published again
    assert ledger.get(otp).state == "queued"  # type: ignore[union-attr]
    assert ledger.get(promo).state == "unknown"  # type: ignore[union-attr]
    assert ledger.get(other).state == "sending"  # type: ignore[union-attr]  # a live holder
    assert redis_client.llen(QUEUE_TX) == 1  # the OTP's new message
    assert redis_client.zrange(schema.WORKERS, 0, -1) == [b"host/2/alive"]
    assert not redis_client.exists(schema.held("host/1/dead"))
    record = ledger.get(otp)
    assert record is not None and record.ambiguous == 1
    assert record.error is not None and "worker died" in record.error["message"]


def test_messages_no_live_worker_holds_go_back_to_their_queue_byte_for_byte(
    dispatcher: Dispatcher, ledger: Ledger, clock: FakeClock, redis_client: redis.Redis
) -> None:
    first, second = hello(dispatcher), hello(dispatcher, to="+15551230002")
    original = redis_client.lrange(QUEUE_TX, 0, -1)
    held_tag = deliver(redis_client, QUEUE_TX, clock.now)
    orphan_tag = deliver(redis_client, QUEUE_TX, clock.now)
    beating = {"host/3/alive": (held_tag,)}
    early = recover(ledger, clock, redis_client, int(DEAD_S) - 1, beating)
    assert early.messages_restored == 0  # too recent to judge
    assert recover(ledger, clock, redis_client, 1, beating).messages_restored == 1
    assert redis_client.hkeys(schema.KOMBU_UNACKED) == [held_tag.encode()]
    [restored] = redis_client.lrange(QUEUE_TX, 0, -1)
    stored = json.dumps([json.loads(restored), "", QUEUE_TX])
    assert json.loads(stored)[0]["headers"]["timelimit"] == [None, None]  # a list stays one
    expected = json.loads(original[0])
    expected["headers"]["timelimit"] = [None, None]
    assert json.loads(restored) == expected  # the orphan, as it was delivered
    assert expected["properties"]["delivery_tag"] == orphan_tag
    assert {ledger.get(first).state, ledger.get(second).state} == {"queued"}  # type: ignore[union-attr]


def test_a_message_lost_between_brpop_and_unacked_is_published_again_once(
    dispatcher: Dispatcher, ledger: Ledger, clock: FakeClock, redis_client: redis.Redis
) -> None:
    lost = hello(dispatcher)
    waiting = hello(dispatcher, to="+15551230002")
    redis_client.rpop(QUEUE_TX)  # BRPOP's reply never arrived: the message is gone
    assert recover(ledger, clock, redis_client).republished == 0  # first seen: wait
    assert recover(ledger, clock, redis_client, int(DEAD_S) - 1).republished == 0
    assert recover(ledger, clock, redis_client).republished == 1
    ids = [
        json.loads(json.loads(m)["body"])[1]["job_id"] for m in redis_client.lrange(QUEUE_TX, 0, -1)
    ]
    assert sorted(ids) == sorted([lost, waiting])  # one message each
    assert recover(ledger, clock, redis_client, 3 * int(DEAD_S)).republished == 0
    assert redis_client.llen(QUEUE_TX) == 2


def test_a_backlog_of_any_age_is_never_published_twice(
    dispatcher: Dispatcher, ledger: Ledger, clock: FakeClock, redis_client: redis.Redis
) -> None:
    lines = [
        {
            "type": "template",
            "to": f"+1555200{n:04d}",
            "fromPhoneNo": FROM,
            "name": "hello_world",
            "language": "en",
            "lane": "bulk",
        }
        for n in range(1000)
    ]
    dispatcher.send_many(lines)
    before = redis_client.llen(QUEUE_BULK)
    in_flight = deliver(redis_client, QUEUE_BULK, clock.now)  # a worker has one batch
    # Half an hour of passes, one a second, over a backlog that does not move (a
    # throttled number, a paused campaign).
    result = recover(ledger, clock, redis_client, 1800, {"host/4/alive": (in_flight,)})
    assert (result.republished, result.messages_restored) == (0, 0)
    assert redis_client.llen(QUEUE_BULK) == before - 1


def test_after_a_gap_in_the_passes_no_worker_is_judged_until_it_could_beat(
    dispatcher: Dispatcher, ledger: Ledger, clock: FakeClock, redis_client: redis.Redis
) -> None:
    job_id = hello(dispatcher)
    redis_client.delete(QUEUE_TX)
    assert isinstance(ledger.claim(job_id, "host/5/w", "1"), Claim)
    alive(redis_client, "host/5/w", clock.now)
    clock.advance(30)  # Redis (and so beat and the heartbeats) was down for 30 s
    assert ledger.recover().waiting
    assert recover(ledger, clock, redis_client, 3).waiting  # the worker not heard yet
    settled = recover(ledger, clock, redis_client, int(DEAD_S), {"host/5/w": ()})
    assert not settled.waiting and settled.dead_workers == 0  # it was only cut off
    assert ledger.get(job_id).state == "sending"  # type: ignore[union-attr]
    gone = recover(ledger, clock, redis_client, int(DEAD_S))  # now it is silent
    assert gone.dead_workers == 1


def test_a_claim_whose_answer_was_lost_is_given_back(
    dispatcher: Dispatcher, ledger: Ledger, redis_client: redis.Redis
) -> None:
    job_id = hello(dispatcher)
    assert isinstance(ledger.take(QUEUE_TX, "host/6/w", "41"), Claim)  # the answer was lost
    assert not ledger.unclaim("host/6/w", "40")  # another claim: never made
    assert ledger.unclaim("host/6/w", "41")
    record = ledger.get(job_id)
    assert record is not None and (record.state, record.attempts) == ("retry_wait", 0)
    assert ledger.tick().published == 1  # due at once
    assert isinstance(ledger.claim(job_id, "host/6/w", "42"), Claim)
    assert not ledger.unclaim("host/6/w", "41")  # given back once only


def test_a_retry_goes_to_the_front_and_the_backlog_behind_it_is_not_taken_for_lost(
    dispatcher: Dispatcher, ledger: Ledger, clock: FakeClock, redis_client: redis.Redis
) -> None:
    first = hello(dispatcher)
    backlog = [hello(dispatcher, to=f"+155512300{n:02d}") for n in range(10, 30)]
    taken = ledger.take(QUEUE_TX, "host/7/w", "1")
    assert isinstance(taken, Claim) and taken.job_id == first
    ledger.finish(first, taken.attempt, "retry_wait", error={"status": 503}, next_attempt_ms=0)
    assert ledger.tick().published == 1
    again = ledger.take(QUEUE_TX, "host/7/w", "2")  # the retry is next, not behind 20 jobs
    assert isinstance(again, Claim) and again.job_id == first
    ledger.finish(first, again.attempt, "retry_wait", error={"status": 503}, next_attempt_ms=0)
    ledger.tick()
    result = recover(ledger, clock, redis_client, 3 * int(DEAD_S), {"host/7/w": ()})
    assert result.republished == 0  # nothing behind the front is taken for lost
    assert redis_client.llen(QUEUE_TX) == len(backlog) + 1
    assert [ledger.take(QUEUE_TX).job_id for _ in range(3)] == [first, *backlog[:2]]  # type: ignore[union-attr]
