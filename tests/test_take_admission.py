"""A Cloud job is admitted by the script that claims it (take.lua for a worker draining
its queue, claim.lua for a message Celery delivered, with the admission
``Limiter.queue_plan`` plans for the queue; claim.lua for a campaign batch's job, planned
like the jobs before it): one round trip to Redis a message instead of two, and every
limit held as when the worker admitted the job itself. Real Redis, the sandbox gateway,
the worker's own logic on this thread."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
import redis

from dispatcher.engine.limiter import Limiter
from dispatcher.engine.worker import Drained, Worker
from dispatcher.job.queues import queue_name
from dispatcher.ledger import schema
from dispatcher.ledger.jobs import Claim
from dispatcher.ledger.scripts import now
from dispatcher.producer.api import Dispatcher
from tests.support.processes import SandboxProcess
from tests.support.stack import make_settings

FROM = "+15550000001"
QUEUE = "waapi.cloud.15550000001.tx"


def script_calls(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{cmd}", {}).get("calls", 0)) for cmd in ("fcall", "eval"))


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    made = redis.Redis.from_url(redis_url)
    yield made
    made.close()


def test_a_drained_message_costs_its_take_and_its_outcome(
    redis_url: str, sandbox: SandboxProcess, client: redis.Redis
) -> None:
    settings = make_settings(redis_url, sandbox.base_url)
    count = 20
    with Dispatcher(settings, client) as dispatcher:
        worker = Worker.from_settings(settings, 4, client=client)
        try:  # a first message: the worker registers and its scripts are loaded
            dispatcher.send_template("+15550009999", FROM, "hello_world", "en")
            assert worker.run(worker.drain(QUEUE)).taken == 1
            jobs = [
                dispatcher.send_template(f"+1555{n:07d}", FROM, "hello_world", "en")
                for n in range(count)
            ]
            client.config_resetstat()
            taken = worker.run(worker.drain(QUEUE)).taken
            calls = script_calls(client)
        finally:
            worker.close()
        states = [dispatcher.ledger.get(job_id) for job_id in jobs]
    assert taken == count
    assert all(state is not None and state.state == "sent" for state in states)
    # The first take; then each message's outcome with the next take: no admission
    # script of its own (it was three scripts a message).
    assert calls == 1 + 2 * count


def test_a_drained_number_is_held_to_its_rate(
    redis_url: str, sandbox: SandboxProcess, client: redis.Redis
) -> None:
    settings = make_settings(redis_url, sandbox.base_url, number_per_second=4)
    interval_s = 1 / settings.usable_number_rate_per_s(FROM)
    count = 6
    with Dispatcher(settings, client) as dispatcher:
        for n in range(count):
            dispatcher.send_template(f"+1557{n:07d}", FROM, "hello_world", "en")
        worker = Worker.from_settings(settings, 4, client=client)
        try:
            worker.run(worker.drain(QUEUE))
        finally:
            worker.close()
    received = sorted(item["received"] for item in sandbox.sent())
    assert len(received) == count
    gaps = [later - earlier for earlier, later in itertools.pairwise(received)]
    assert min(gaps) >= 0.8 * interval_s  # never faster than the number's rate
    assert received[-1] - received[0] >= (count - 1) * interval_s * 0.95


def test_a_take_admits_only_a_job_that_goes_as_it_is(
    dispatcher: Dispatcher, client: redis.Redis
) -> None:
    """A free-form message to a recipient whose window is not known open may not be sent
    (or goes as its fallback template): its take charges nothing, and the worker admits
    it if it sends it. A template goes as it is: admitted with its claim."""
    limiter = Limiter(client, dispatcher.settings)
    text = dispatcher.send_text("+15551230001", FROM, "hello")
    template = dispatcher.send_template("+15551230002", FROM, "hello_world", "en")
    ledger = dispatcher.ledger
    plan = limiter.queue_plan(QUEUE)
    assert plan and limiter.queue_plan("waapi.cloud.15550000001.bulk") == ()

    first = now(ledger.take_steps(("take", QUEUE), "host/1/w", "1", plan))
    assert isinstance(first, Claim) and first.job_id == text
    assert first.admission is None
    assert not client.exists(schema.rate(f"num:{FROM}"))  # no slot spent on it
    assert client.hget(schema.job(text), "go") is None

    second = now(ledger.take_steps(("take", QUEUE), "host/1/w", "2", limiter.queue_plan(QUEUE)))
    assert isinstance(second, Claim) and second.job_id == template
    assert second.admission is not None
    admission = limiter.admission_of(second.envelope(), second.admission)
    assert admission.status == "ok" and admission.delay_s == 0
    assert client.exists(schema.rate(f"num:{FROM}"))
    assert client.exists(schema.rate(f"pair:{FROM}:+15551230002"))  # the recipient filled in
    assert client.hget(schema.job(template), "go") == b"1"  # going, under its attempt


def test_a_delivered_job_is_admitted_with_its_claim_by_id(
    dispatcher: Dispatcher, client: redis.Redis
) -> None:
    """Celery delivered the message: the worker claims its job by id, with the plan of
    the queue it came from."""
    limiter = Limiter(client, dispatcher.settings)
    job_id = dispatcher.send_template("+15551230003", FROM, "hello_world", "en")
    ledger = dispatcher.ledger
    claim = now(ledger.take_steps(("claim", job_id), "host/1/w", "1", limiter.queue_plan(QUEUE)))
    assert isinstance(claim, Claim) and claim.admission is not None
    assert limiter.admission_of(claim.envelope(), claim.admission).status == "ok"
    assert client.hget(schema.job(job_id), "go") == b"1"
    again = now(ledger.take_steps(("claim", job_id), "host/1/w", "2", limiter.queue_plan(QUEUE)))
    assert again == "sending"  # a duplicate delivery: not claimed, nothing admitted
    bare = dispatcher.send_template("+15551230004", FROM, "hello_world", "en")
    plain = now(ledger.take_steps(("claim", bare), "host/1/w", "3"))
    assert isinstance(plain, Claim) and plain.admission is None  # no plan: the worker admits


def test_a_job_tagged_with_a_campaign_is_left_to_the_worker(
    dispatcher: Dispatcher, client: redis.Redis
) -> None:
    """A transactional job may carry a campaign id (and, from another app, the campaign's
    own rate, a limit no plan has): its claim admits nothing and the worker admits it."""
    limiter = Limiter(client, dispatcher.settings)
    tagged = dispatcher.send_template(
        "+15551230005", FROM, "hello_world", "en", campaign_id="spring"
    )
    claim = now(
        dispatcher.ledger.take_steps(("take", QUEUE), "host/1/w", "1", limiter.queue_plan(QUEUE))
    )
    assert isinstance(claim, Claim) and claim.job_id == tagged
    assert claim.admission is None
    assert not client.exists(schema.rate(f"num:{FROM}"))
    assert client.hget(schema.job(tagged), "go") is None


def test_a_drain_tells_the_send_loop_how_many_messages_are_left_behind_each_take(
    redis_url: str, sandbox: SandboxProcess, client: redis.Redis
) -> None:
    """The send loop adds a lane only while a take leaves messages behind (a lane added
    on every take found the queue empty most of the time at moderate rates: two empty
    takes each)."""
    settings = make_settings(redis_url, sandbox.base_url)
    told: list[int] = []

    def go_on(backlog: int) -> bool:
        told.append(backlog)
        return True

    with Dispatcher(settings, client) as dispatcher:
        worker = Worker.from_settings(settings, 4, client=client)
        try:
            for n in range(4):
                dispatcher.send_template(f"+1555{n:07d}", FROM, "hello_world", "en")
            assert worker.run(worker.drain(QUEUE, go_on)) == Drained(4, spent=False)
        finally:
            worker.close()
    assert told == [3, 2, 1, 0]


def test_a_drain_that_spends_its_budget_says_so(
    redis_url: str, sandbox: SandboxProcess, client: redis.Redis
) -> None:
    """The send loop drains again only after a drain that stopped on its budget: one
    that ran out of messages would only find the queues empty again."""
    settings = make_settings(redis_url, sandbox.base_url, worker_drain_jobs=2)
    with Dispatcher(settings, client) as dispatcher:
        worker = Worker.from_settings(settings, 4, client=client)
        try:
            for n in range(3):
                dispatcher.send_template(f"+1555{n:07d}", FROM, "hello_world", "en")
            assert worker.run(worker.drain(QUEUE)) == Drained(2, spent=True)
            assert worker.run(worker.drain(QUEUE)) == Drained(1, spent=False)
        finally:
            worker.close()


def test_a_batchs_jobs_are_admitted_with_their_claims(
    redis_url: str, sandbox: SandboxProcess, client: redis.Redis
) -> None:
    """A campaign batch: each job's claim (made with the last job's outcome; a batch's
    first, like the last batch's jobs from its queue) admits it, planned like the jobs
    before it (``Limiter.plan_like``): no admission script of its own."""
    settings = make_settings(redis_url, sandbox.base_url)
    bulk = queue_name("cloud", FROM, "bulk")
    count = 10

    def batch(dispatcher: Dispatcher, first: int) -> list[str]:
        return [
            dispatcher.send_template(
                f"+1555{n:07d}", FROM, "hello_world", "en", lane="bulk", campaign_id="spring"
            )
            for n in range(first, first + count)
        ]

    with Dispatcher(settings, client) as dispatcher:
        worker = Worker.from_settings(settings, 4, client=client)
        try:
            for lane in worker.batch(batch(dispatcher, 0), 1, bulk)[1]:
                worker.run(lane)  # (its first job is admitted on its own: none came before)
            jobs = batch(dispatcher, 100)
            client.config_resetstat()
            states, lanes = worker.batch(jobs, 1, bulk)
            for lane in lanes:
                worker.run(lane)
            calls = script_calls(client)
        finally:
            worker.close()
    assert states == ["sent"] * count
    assert all(client.hget(schema.job(job_id), "go") == b"1" for job_id in jobs)
    # Each job: its claim and its outcome (each outcome with the next claim), three
    # scripts a job when each was admitted on its own.
    assert calls == 2 * count
