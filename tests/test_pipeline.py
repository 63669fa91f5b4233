"""End to end: producer -> Redis -> real Celery worker processes -> the sandbox gateway.

Every send type reaches the sandbox with the gateway's body; retryable faults end in
``sent``; other 4xx end in ``failed`` after one call; exhausted retries end in ``dead``;
jobs published by another Celery app by task name are sent and recorded.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from dispatcher.gateway import parse_send
from dispatcher.producer.api import Dispatcher
from tests.support.data import hello_envelope
from tests.support.processes import RedisProcess, SandboxProcess, free_port
from tests.support.stack import Stack
from tests.support.waiting import wait_until

FROM, TO = "+15550000001", "+15551230001"
MEDIA = "https://example.com/f"


@pytest.fixture(scope="module")
def stack(redis_process: RedisProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    redis.Redis(port=redis_process.port).flushall()  # no jobs left by earlier modules
    sandbox = SandboxProcess.start("--no-window", "--seed", "3")
    stack = Stack(
        redis_process, sandbox, Path(tmp_path_factory.mktemp("pipeline")), retry_max_attempts=4
    )
    stack.start_worker()
    stack.start_beat()
    yield stack
    stack.stop()
    sandbox.stop()


@pytest.fixture
def dispatcher(stack: Stack) -> Iterator[Dispatcher]:
    stack.sandbox.reset()
    stack.sandbox.control("POST", "/_sandbox/faults", {"recipient_errors": {}})
    with stack.dispatcher() as dispatcher:
        yield dispatcher


BODIES: list[tuple[str, str, dict[str, Any]]] = [
    ("cloud", "text", {"body": "Your code is 123456"}),
    (
        "cloud",
        "template",
        {
            "name": "order_shipped",
            "language": "en",
            "components": [
                {
                    "type": "body",
                    "parameters": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}],
                }
            ],
        },
    ),
    ("cloud", "buttons", {"bodyText": "b", "buttons": [{"id": "y", "title": "Yes"}]}),
    (
        "cloud",
        "list",
        {
            "bodyText": "b",
            "buttonText": "Open",
            "sections": [{"rows": [{"id": "r", "title": "Row"}]}],
        },
    ),
    ("cloud", "cta", {"bodyText": "b", "buttonText": "Go", "url": MEDIA}),
    ("cloud", "flow", {"bodyText": "b", "flowId": "1", "flowCta": "Book"}),
    ("cloud", "image", {"link": MEDIA, "caption": "c"}),
    ("cloud", "video", {"mediaId": "9"}),
    ("cloud", "audio", {"link": MEDIA}),
    ("cloud", "sticker", {"mediaId": "s"}),
    ("cloud", "document", {"link": MEDIA, "filename": "a.pdf"}),
    (
        "cloud",
        "send",
        {
            "type": "template",
            "payload": {"name": "hello_world", "language": "en"},
            "contact": {"first_name": "Sam"},
        },
    ),
    ("qr", "text", {"body": "hi"}),
    ("qr", "image", {"link": MEDIA}),
    ("qr", "video", {"link": MEDIA}),
    ("qr", "audio", {"link": MEDIA}),
    ("qr", "document", {"link": MEDIA, "filename": "a.pdf"}),
    ("qr", "location", {"latitude": 12.9, "longitude": 77.6}),
]


def test_every_send_type_reaches_the_gateway_with_its_body(
    stack: Stack, dispatcher: Dispatcher
) -> None:
    sent: dict[str, dict[str, Any]] = {}
    for n, (channel, kind, fields) in enumerate(BODIES):
        body = {"to": f"+1555777{n:04d}", "fromPhoneNo": FROM, **fields}
        sent[dispatcher.send(channel, kind, body)] = body
    states = stack.wait_states(dispatcher, list(sent))
    assert set(states.values()) == {"sent"}
    records = {r["to"]: r for r in stack.sandbox.sent()}
    assert len(records) == len(BODIES)
    for job_id, body in sent.items():
        job = dispatcher.job(job_id)
        assert job is not None and job.attempts == 1
        record = records[body["to"]]
        assert record["wamid"] == job.wamid
        channel = job.channel
        assert record["body"] == parse_send(channel, job.type, body).to_gateway()


def test_429_5xx_and_resets_end_sent_after_retries(stack: Stack, dispatcher: Dispatcher) -> None:
    stack.sandbox.faults(burst_429=3, retry_after_s=1, burst_5xx=3)
    ids = [
        dispatcher.send_template(f"+1555888{n:04d}", FROM, "hello_world", "en") for n in range(6)
    ]
    states = stack.wait_states(dispatcher, ids, timeout_s=60)
    assert set(states.values()) == {"sent"}
    attempts = [dispatcher.job(i).attempts for i in ids]  # type: ignore[union-attr]
    assert sum(attempts) == 6 + 6  # three 429s and three 503s, each retried once
    assert len(stack.sandbox.sent()) == 6


def test_connection_resets_follow_the_transactional_resend_policy(
    stack: Stack, dispatcher: Dispatcher
) -> None:
    stack.sandbox.faults(rate_reset=0.4)
    ids = [
        dispatcher.send_template(f"+1555999{n:04d}", FROM, "hello_world", "en") for n in range(10)
    ]
    states = stack.wait_states(dispatcher, ids, timeout_s=60)
    stack.sandbox.faults(rate_reset=0.0)
    assert set(states.values()) == {"sent"}
    # A reset before the gateway processed the call sent nothing: no duplicates here.
    assert sorted(r["to"] for r in stack.sandbox.sent()) == sorted(
        dispatcher.job(i).to for i in ids
    )  # type: ignore[union-attr]
    assert sum(dispatcher.job(i).ambiguous for i in ids) >= 1  # type: ignore[union-attr]


def test_other_4xx_fail_at_once_with_the_gateways_message(
    stack: Stack, dispatcher: Dispatcher
) -> None:
    stack.sandbox.faults(recipient_errors={TO: 131026})
    job_id = dispatcher.send_template(TO, FROM, "hello_world", "en")
    stack.wait_states(dispatcher, [job_id])
    job = dispatcher.job(job_id)
    assert job is not None and job.state == "failed" and job.attempts == 1
    assert job.error == {
        "status": 400,
        "code": 131026,
        "message": "(#131026) Recipient phone number does not have WhatsApp installed",
    }
    assert stack.sandbox.stats()["counters"]["requests"] == 1


def test_exhausted_retries_end_dead(stack: Stack, dispatcher: Dispatcher) -> None:
    stack.sandbox.faults(rate_5xx=1.0)
    job_id = dispatcher.send_template(TO, FROM, "hello_world", "en")
    try:
        stack.wait_states(dispatcher, [job_id], timeout_s=60)
    finally:
        stack.sandbox.faults(rate_5xx=0.0)
    job = dispatcher.job(job_id)
    assert job is not None and (job.state, job.attempts) == ("dead", 4)
    assert job.error is not None and job.error["status"] == 503
    assert stack.sandbox.stats()["counters"]["fault_5xx"] == 4


def test_connect_failures_retry_until_the_gateway_is_back(tmp_path: Path) -> None:
    port = free_port()
    own_redis = RedisProcess.start(tmp_path / "redis")  # not the module's worker's Redis
    sandbox = SandboxProcess.start("--no-window")
    stack = Stack(
        own_redis,
        sandbox,
        tmp_path,
        waapi_base_url=f"http://127.0.0.1:{port}/api/v1/external",
        retry_max_attempts=50,
    )
    sandbox.stop()  # nothing listens on `port` yet
    stack.start_worker(threads=4)
    stack.start_beat()
    try:
        with stack.dispatcher() as dispatcher:
            job_id = dispatcher.send_template(TO, FROM, "hello_world", "en")
            wait_until(lambda: (dispatcher.job(job_id).attempts or 0) >= 2, timeout_s=30)
            assert dispatcher.job(job_id).state in ("retry_wait", "queued", "sending")
            assert dispatcher.job(job_id).error["message"].startswith("could not connect")
            back = SandboxProcess.start("--no-window", port=port)
            try:
                stack.wait_states(dispatcher, [job_id], timeout_s=30)
                assert dispatcher.job(job_id).state == "sent"
                assert len(back.sent()) == 1
            finally:
                back.stop()
    finally:
        stack.stop()
        own_redis.stop()


def test_another_celery_app_can_enqueue_by_task_name(stack: Stack, dispatcher: Dispatcher) -> None:
    from celery import Celery

    producer = Celery("crm", broker=stack.redis.url, set_as_current=False)
    envelope = hello_envelope("crm-order-42", TO, FROM)
    producer.send_task(
        "waapi.send",
        kwargs={"job": envelope.model_dump(mode="json", by_alias=True)},
        queue="waapi.cloud.15550000001.tx",
    )
    producer.send_task(
        "waapi.send",
        kwargs={"job": envelope.model_dump(mode="json", by_alias=True)},
        queue="waapi.cloud.15550000001.tx",
    )  # delivered twice: sent once
    wait_until(lambda: dispatcher.job("crm-order-42") is not None, timeout_s=30)
    stack.wait_states(dispatcher, ["crm-order-42"])
    job = dispatcher.job("crm-order-42")
    assert job is not None and job.state == "sent" and job.wamid
    wait_until(lambda: stack.sandbox.stats()["counters"].get("requests", 0) >= 1)
    assert [r["to"] for r in stack.sandbox.sent()] == [TO]
    producer.close()
