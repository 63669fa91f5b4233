"""Bad input, property-based, through the Python API and Celery-by-name (the HTTP ingress
has its own fuzz in test_http_auth_fuzz.py): nothing invalid is queued or sent, nothing
crashes, and every refusal names the field and the rule it broke."""

from __future__ import annotations

import collections
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatcher.errors import InvalidRequest
from dispatcher.gateway import CLOUD_KINDS, QR_KINDS
from dispatcher.producer.api import Dispatcher, Enqueued
from tests.strategies import gateway_fields, json_values
from tests.support.data import hello_envelope
from tests.support.processes import RedisProcess, SandboxProcess
from tests.support.stack import Stack, make_settings, own_stack
from tests.support.waiting import wait_until

FROM = "+15550000001"
TO = "+15553330001"

# Strings people and programs really send by mistake.
EDGE_TEXT = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "\ud800",  # a lone surrogate: cannot be encoded as UTF-8
        "e\u0301",
        "\u200b+15553330001",  # zero-width space before a good number
        "+١٥٥٥٣٣٣٠٠٠١",  # Arabic-Indic digits
        "+15553330001\n",
        "+1 (555) 333-0001",
        "15553330001",
        "+0000000000",
        "+" + "9" * 20,
        "🙂" * 2100,
        "x" * 5000,
        "<script>alert(1)</script>",
        "'; DROP TABLE jobs; --",
    ]
)
JSON = json_values(
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | EDGE_TEXT,
    max_leaves=10,
    key_size=10,
    items=5,
)
FIELDS = gateway_fields("type", "contact", "fileName", "header", "footer")
VALID_TEMPLATE = {"to": TO, "fromPhoneNo": FROM, "name": "hello_world", "language": "en"}
TOO_MANY_BUTTONS = {
    "to": TO,
    "fromPhoneNo": FROM,
    "bodyText": "pick one",
    "buttons": [{"id": str(n), "title": f"b{n}"} for n in range(4)],
}
BODIES = st.one_of(
    st.dictionaries(FIELDS, JSON, max_size=8),
    st.dictionaries(FIELDS, JSON | EDGE_TEXT, max_size=4).map(lambda d: {**VALID_TEMPLATE, **d}),
    st.just(TOO_MANY_BUTTONS),
)
KINDS = st.sampled_from([("cloud", k) for k in CLOUD_KINDS] + [("qr", k) for k in QR_KINDS])


@pytest.fixture(scope="module")
def dispatcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dispatcher]:
    server = RedisProcess.start(Path(tmp_path_factory.mktemp("bad-input")))
    with Dispatcher(make_settings(server.url)) as dispatcher:
        yield dispatcher
    server.stop()


def queued(client: redis.Redis) -> int:
    """Jobs recorded plus messages waiting in any queue."""
    messages = sum(int(client.llen(k)) for k in client.scan_iter("waapi.*", _type="list"))
    return int(client.zcard("waapi:recent")) + messages


def assert_names_field_and_rule(error: InvalidRequest) -> None:
    assert error.problems, error
    for problem in error.problems:
        assert problem.rule and not problem.rule.startswith(" "), problem
        assert str(problem) in str(error)
    # Values are not echoed back (they may be personal data or secrets).
    assert "DROP TABLE" not in str(error) and "<script>" not in str(error)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(kind=KINDS, body=BODIES)
def test_python_send_refuses_with_field_and_rule_and_queues_nothing(
    dispatcher: Dispatcher, kind: tuple[str, str], body: dict[str, Any]
) -> None:
    client = dispatcher.ledger.client
    before = queued(client)
    try:
        job_id = dispatcher.send(*kind, body)
    except InvalidRequest as error:
        assert_names_field_and_rule(error)
        assert queued(client) == before
        return
    record = dispatcher.job(job_id)  # accepted: recorded and its message queued
    assert record is not None and record.state == "queued"
    assert queued(client) == before + 2
    assert dispatcher.ledger.envelope(job_id) is not None  # and it reads back as valid


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    lines=st.lists(
        st.one_of(
            BODIES.map(lambda b: {"type": "template", **b}),
            st.tuples(st.sampled_from((*CLOUD_KINDS, "fax", "", "TEXT")), BODIES).map(
                lambda kb: {"type": kb[0], **kb[1]}
            ),
            JSON,
        ),
        max_size=20,
    )
)
def test_send_many_answers_each_line_and_queues_only_the_valid(
    dispatcher: Dispatcher, lines: list[Any]
) -> None:
    client = dispatcher.ledger.client
    before = int(client.zcard("waapi:recent"))
    results = dispatcher.send_many(lines)
    assert len(results) == len(lines)
    for result in results:
        if isinstance(result, InvalidRequest):
            assert_names_field_and_rule(result)
    fresh = {r.job_id for r in results if isinstance(r, Enqueued) and not r.duplicate}
    assert int(client.zcard("waapi:recent")) == before + len(fresh)


@pytest.mark.parametrize(
    ("call", "problem"),
    [
        (
            lambda d: d.send_text("+15553330001", FROM, "\ud800"),
            "body must be valid unicode (no lone surrogates)",
        ),
        (lambda d: d.send_text("\u200b+15553330001", FROM, "hi"), "to must be an E.164"),
        (lambda d: d.send_text("+١٥٥٥٣٣٣٠٠٠١", FROM, "hi"), "to must be an E.164"),
        (lambda d: d.send_text(TO, FROM, "x" * 5000), "body must be at most 4096"),
        (lambda d: d.send("cloud", "text", {"to": TO, "fromPhoneNo": FROM, "body": 7}), "body"),
        (lambda d: d.send("cloud", "telegram", {"to": TO}), "type must be one of"),
    ],
)
def test_unicode_and_type_edge_cases_are_refused_by_name(
    dispatcher: Dispatcher, call: Any, problem: str
) -> None:
    before = queued(dispatcher.ledger.client)
    with pytest.raises(InvalidRequest) as caught:
        call(dispatcher)
    assert problem in str(caught.value)
    assert_names_field_and_rule(caught.value)
    assert queued(dispatcher.ledger.client) == before


# --- Celery by name: another app publishes whatever it likes -----------------------------


def envelope(**changes: Any) -> dict[str, Any]:
    good = hello_envelope("crm-1", TO, FROM).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    good.update(changes)
    return {k: v for k, v in good.items() if v is not None}


# Envelopes the worker must refuse before anything else (recorded as `rejected` events).
BAD_ENVELOPES: list[Any] = [
    None,
    "a string",
    [1, 2, 3],
    {},
    envelope(id=None),
    envelope(id="has spaces and / slashes"),
    envelope(id="x" * 65),
    envelope(id="bad-v", v=2),
    envelope(id="bad-channel", channel="sms"),
    envelope(id="bad-to", to="0044 20 7946 0958"),
    envelope(id="bad-to-unicode", to="\u200b+15553330001"),
    envelope(id="bad-from", fromPhoneNo="12345"),
    envelope(id="bad-lane", lane="urgent"),
    envelope(id="bad-extra", apiSecret="secr_should_not_be_here"),
    envelope(id="bad-expiry", expiresAt="yesterday"),
]
# Envelopes that parse but whose message the gateway would refuse: recorded as failed.
BAD_MESSAGES: list[dict[str, Any]] = [
    envelope(id="bad-type", type="fax"),
    envelope(id="bad-payload", payload={"name": "", "language": "en"}),
    envelope(id="bad-buttons", type="buttons", payload={"bodyText": "pick", "buttons": []}),
    envelope(id="bad-number", fromPhoneNo="+15557777777"),  # no key is bound to it
]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with own_stack(tmp_path, "--no-window") as stack:
        yield stack


def test_celery_by_name_garbage_is_refused_recorded_and_never_sent(stack: Stack) -> None:
    from celery import Celery

    producer = Celery("other-app", broker=stack.redis.url, set_as_current=False)
    queue = "waapi.cloud.15550000001.tx"
    for job in BAD_ENVELOPES + BAD_MESSAGES:
        producer.send_task("waapi.send", kwargs={"job": job}, queue=queue)
    producer.send_task("waapi.send", kwargs={"jobs": "wrong name"}, queue=queue)
    producer.send_task("waapi.send_batch", kwargs={"jobs": "not a list"}, queue=queue)
    producer.send_task(
        "waapi.send_batch", kwargs={"jobs": [None, envelope(id="b-ok")]}, queue=queue
    )
    producer.send_task("waapi.send", kwargs={"job": envelope(id="the-good-one")}, queue=queue)
    stack.start_worker(threads=4)
    with stack.dispatcher() as dispatcher:
        stack.wait_states(dispatcher, ["the-good-one", "b-ok"], timeout_s=60)
        wait_until(lambda: len(rejections(dispatcher)) >= len(BAD_ENVELOPES) + 3, timeout_s=30)
        stack.wait_states(dispatcher, [j["id"] for j in BAD_MESSAGES], timeout_s=30)
        rejected = rejections(dispatcher)
        failed = {j["id"]: dispatcher.job(j["id"]) for j in BAD_MESSAGES}
        stats = dispatcher.ledger.stats()
    producer.close()

    assert sorted(r["to"] for r in stack.sandbox.sent()) == [TO, TO]  # only the two good ones
    assert stats["rejected"] == len(rejected) == len(BAD_ENVELOPES) + 3
    for event in rejected:
        assert event["error"], event  # says which field broke which rule
        assert "secr_should_not_be_here" not in json.dumps(event)
    by_job = collections.Counter(e["job"] for e in rejected)
    assert by_job["bad-channel"] == 1 and "channel" in next(
        e["error"] for e in rejected if e["job"] == "bad-channel"
    )
    assert "apiSecret" in next(e["error"] for e in rejected if e["job"] == "bad-extra")
    for job_id, record in failed.items():
        assert record is not None and record.state == "failed", job_id
        assert record.error and record.error["message"], job_id


def rejections(dispatcher: Dispatcher) -> list[dict[str, str]]:
    events = dispatcher.ledger.client.xrange("waapi:events")
    decoded = [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in events]
    return [e for e in decoded if e.get("state") == "rejected"]


FIELDS_OF_ENVELOPE = st.sampled_from(
    ["v", "id", "channel", "type", "to", "fromPhoneNo", "payload", "lane", "expiresAt",
     "notBefore", "idempotencyKey", "campaignId", "fallbackTemplate", "sessionId", "extra"]
)  # fmt: skip
MESSAGE_BODIES = st.one_of(
    JSON,
    st.tuples(FIELDS_OF_ENVELOPE, JSON | EDGE_TEXT).map(
        lambda fv: {**envelope(id="prop-"), fv[0]: fv[1]}
    ),
)


@pytest.fixture(scope="module")
def in_process_worker(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Any, SandboxProcess]]:
    """A Worker (the code a Celery task runs) on a real Redis and sandbox, in process, so
    that hypothesis can feed it hundreds of message bodies quickly."""
    from dispatcher.engine.worker import Worker

    server = RedisProcess.start(Path(tmp_path_factory.mktemp("by-name")))
    sandbox = SandboxProcess.start("--no-window")
    settings = make_settings(server.url, sandbox.base_url, pair_interval_s=0)
    worker = Worker.from_settings(settings, concurrency=2)
    yield worker, sandbox
    worker.close()
    sandbox.stop()
    server.stop()


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=MESSAGE_BODIES)
def test_any_message_body_by_task_name_is_sent_once_or_refused_and_recorded(
    in_process_worker: tuple[Any, SandboxProcess], body: Any
) -> None:
    """What ``waapi.send(job=...)`` does with whatever another app publishes: a valid job
    is sent (once, however often it comes); anything else is refused with a field and a
    rule, recorded, and never sent. Nothing raises."""
    worker, sandbox = in_process_worker
    client = worker.ledger.client
    if isinstance(body, dict) and str(body.get("id", "")).startswith("prop-"):
        body = {**body, "id": f"prop-{uuid.uuid4().hex}"}  # a new job every example
    sent_before = sandbox.stats()["sent"]
    rejected_before = int(client.hget("waapi:stats", "rejected") or 0)
    state = worker.handle(body)
    again = worker.handle(body)  # delivered twice
    sent = sandbox.stats()["sent"] - sent_before
    rejected = int(client.hget("waapi:stats", "rejected") or 0) - rejected_before
    if state == "rejected":
        assert again == "rejected" and rejected == 2 and sent == 0
        event = client.xrevrange("waapi:events", count=1)[0][1]
        assert event[b"state"] == b"rejected" and event[b"error"]
    else:
        assert rejected == 0
        assert sent <= 1  # the second delivery never sends again
        record = worker.ledger.get(body["id"])
        assert record is not None and record.state == state
        if state in ("failed", "dead"):
            assert sent == 0 and record.error  # refused by its message: says why


def test_a_message_naming_its_job_by_id_sends_it_once_or_is_refused_and_recorded(
    in_process_worker: tuple[Any, SandboxProcess],
) -> None:
    """``waapi.send(job_id=...)`` (the dispatcher's own messages): a job the ledger holds
    is sent once however often its message comes; an id it does not hold, a malformed
    id, or an id beside an envelope is refused with the field and the rule, recorded,
    and nothing is sent."""
    worker, sandbox = in_process_worker
    client = worker.ledger.client
    with Dispatcher(worker.settings) as dispatcher:
        job_id = dispatcher.send_template("+15557770001", FROM, "hello_world", "en")
    sent_before = sandbox.stats()["sent"]
    assert worker.handle(None, job_id) == "sent"
    assert worker.handle(None, job_id) == "sent"  # delivered twice: not sent again
    assert sandbox.stats()["sent"] - sent_before == 1
    for job, named, rule in (
        (None, "0" * 32, "job_id: no job with this id in the ledger"),
        (None, "not an id!", "job_id: must be a job id"),
        (None, 42, "job_id: must be a job id"),
        ({"id": "x"}, job_id, "job, job_id: give one of them, not both"),
    ):
        rejected_before = int(client.hget("waapi:stats", "rejected") or 0)
        assert worker.handle(job, named) == "rejected"
        assert int(client.hget("waapi:stats", "rejected") or 0) == rejected_before + 1
        event = client.xrevrange("waapi:events", count=1)[0][1]
        assert event[b"state"] == b"rejected" and event[b"error"].decode().startswith(rule)
    assert sandbox.stats()["sent"] - sent_before == 1


def test_a_batch_of_job_ids_sends_each_known_job_once_and_refuses_the_rest(
    in_process_worker: tuple[Any, SandboxProcess],
) -> None:
    """``waapi.send_batch(jobs=[...])`` with ids (the dispatcher's own batches) beside
    what is not one: each known job is sent once, even when the batch comes twice; an
    unknown or malformed id is refused and recorded; nothing else is sent."""
    worker, sandbox = in_process_worker
    client = worker.ledger.client
    with Dispatcher(worker.settings) as dispatcher:
        known = [
            dispatcher.send_template(f"+1555778000{n}", FROM, "hello_world", "en", lane="bulk")
            for n in range(3)
        ]
    jobs = [known[0], "0" * 32, known[1], "not an id!", 7, known[2]]
    sent_before = sandbox.stats()["sent"]
    rejected_before = int(client.hget("waapi:stats", "rejected") or 0)
    for _ in range(2):  # delivered twice
        states, lanes = worker.batch(jobs, 2)
        for lane in lanes:
            worker.run(lane)
        assert states == ["sent", "rejected", "sent", "rejected", "rejected", "sent"]
    assert sandbox.stats()["sent"] - sent_before == 3
    assert int(client.hget("waapi:stats", "rejected") or 0) - rejected_before == 6
    errors = [fields[b"error"].decode() for _, fields in client.xrevrange("waapi:events", count=3)]
    assert any(e.startswith("job_id: no job with this id") for e in errors)
    assert any(e.startswith("job_id: must be a job id") for e in errors)
