"""The producer API refuses bad input before anything is queued, and queues the
gateway's own body for every send type."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from dispatcher import InvalidRequest
from dispatcher.job.envelope import JobEnvelope
from dispatcher.job.line import parse_job
from dispatcher.job.options import JobOptions
from dispatcher.producer.api import Dispatcher, Enqueued
from tests.support.stack import make_settings

FROM, TO = "+15550000001", "+15551230001"
MEDIA = "https://example.com/f"


def nothing_queued(client: redis.Redis) -> bool:
    return client.dbsize() == 0


def envelope(dispatcher: Dispatcher, job_id: str) -> JobEnvelope:
    found = dispatcher.ledger.envelope(job_id)
    assert found is not None
    return found


CASES: list[tuple[str, dict[str, Any], str, dict[str, Any]]] = [
    ("send_text", {"body": "hi", "preview_url": True}, "text", {"body": "hi", "previewUrl": True}),
    (
        "send_template",
        {
            "name": "order_shipped",
            "language": "en",
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "A"}]}],
        },
        "template",
        {
            "name": "order_shipped",
            "language": "en",
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "A"}]}],
        },
    ),
    (
        "send_buttons",
        {"body_text": "b", "buttons": [{"id": "y", "title": "Yes"}]},
        "buttons",
        {"bodyText": "b", "buttons": [{"id": "y", "title": "Yes"}]},
    ),
    (
        "send_list",
        {
            "body_text": "b",
            "button_text": "Open",
            "sections": [{"rows": [{"id": "r", "title": "Row"}]}],
        },
        "list",
        {
            "bodyText": "b",
            "buttonText": "Open",
            "sections": [{"rows": [{"id": "r", "title": "Row"}]}],
        },
    ),
    (
        "send_cta",
        {"body_text": "b", "button_text": "Go", "url": MEDIA},
        "cta",
        {"bodyText": "b", "buttonText": "Go", "url": MEDIA},
    ),
    (
        "send_flow",
        {"body_text": "b", "flow_id": "1", "flow_cta": "Book"},
        "flow",
        {"bodyText": "b", "flowId": "1", "flowCta": "Book", "flowAction": "navigate"},
    ),
    ("send_image", {"link": MEDIA, "caption": "c"}, "image", {"link": MEDIA, "caption": "c"}),
    ("send_video", {"media_id": "9"}, "video", {"mediaId": "9"}),
    ("send_audio", {"link": MEDIA}, "audio", {"link": MEDIA}),
    ("send_sticker", {"media_id": "s"}, "sticker", {"mediaId": "s"}),
    (
        "send_document",
        {"link": MEDIA, "filename": "a.pdf"},
        "document",
        {"link": MEDIA, "filename": "a.pdf"},
    ),
    (
        "send_and_upsert",
        {"type": "text", "payload": {"body": "hi"}, "contact": {"first_name": "S"}},
        "send",
        {"type": "text", "payload": {"body": "hi"}},
    ),
]


@pytest.mark.parametrize(("method", "kwargs", "kind", "payload"), CASES)
def test_typed_methods_queue_the_gateway_body(
    dispatcher: Dispatcher,
    method: str,
    kwargs: dict[str, Any],
    kind: str,
    payload: dict[str, Any],
) -> None:
    job_id = getattr(dispatcher, method)(TO, FROM, **kwargs)
    env = envelope(dispatcher, job_id)
    assert (env.channel, env.type, env.to, env.from_phone_no) == ("cloud", kind, TO, FROM)
    assert env.payload == payload
    if kind == "send":
        assert env.contact == {"first_name": "S"}


@pytest.mark.parametrize("kind", ["text", "image", "video", "audio", "document", "location"])
def test_qr_sends_by_number_or_session(dispatcher: Dispatcher, kind: str) -> None:
    fields: dict[str, Any] = {
        "text": {"body": "hi"},
        "location": {"latitude": 1.5, "longitude": 2.5},
    }.get(kind, {"link": MEDIA})
    by_number = dispatcher.send_qr(kind, TO, from_phone_no=FROM, **fields)  # type: ignore[arg-type]
    by_session = dispatcher.send_qr(kind, TO, session_id="sess_abc", **fields)  # type: ignore[arg-type]
    assert envelope(dispatcher, by_number).from_phone_no == FROM
    record = dispatcher.job(by_session)
    assert record is not None and record.queue == "waapi.qr.sessions.tx"
    assert envelope(dispatcher, by_session).session_id == "sess_abc"


@pytest.mark.parametrize(
    ("call", "problem"),
    [
        (lambda d: d.send_text(TO, FROM, ""), "body must not be empty"),
        (lambda d: d.send_text("12", FROM, "hi"), "to must be an E.164 number"),
        (
            lambda d: d.send_text(TO, "+15550000009", "hi"),
            "fromPhoneNo is not a number of any configured key",
        ),
        (
            lambda d: d.send_buttons(
                TO, FROM, "b", [{"id": str(i), "title": "t"} for i in range(4)]
            ),
            "buttons must be 1-3 items",
        ),
        (lambda d: d.send_image(TO, FROM), "exactly one of link or mediaId is required"),
        (lambda d: d.send_text(TO, FROM, "hi", lane="urgent"), "lane must be one of"),
        (
            lambda d: d.send_text(TO, FROM, "hi", expires_at=datetime.now(UTC) - timedelta(1)),
            "expiresAt must be in the future",
        ),
        (
            lambda d: d.send_text(TO, FROM, "hi", not_before=datetime(2030, 1, 1)),
            "notBefore must carry a time zone",
        ),
        (lambda d: d.send("cloud", "fax", {"to": TO}), "type must be one of"),
    ],
)
def test_invalid_input_is_refused_and_nothing_is_queued(
    dispatcher: Dispatcher, redis_client: redis.Redis, call: Any, problem: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        call(dispatcher)
    assert problem in str(caught.value)
    assert nothing_queued(redis_client)


def test_send_many_answers_per_item_and_batches_per_number(
    dispatcher: Dispatcher, redis_client: redis.Redis
) -> None:
    lines: list[Any] = [
        {
            "type": "template",
            "to": f"+1555123{n:04d}",
            "fromPhoneNo": FROM,
            "name": "hello_world",
            "language": "en",
        }
        for n in range(250)
    ]
    lines.insert(3, {"type": "text", "to": TO, "fromPhoneNo": FROM})  # no body
    lines.insert(7, "not an object")
    keyed = {"type": "template", "to": TO, "fromPhoneNo": "+15550000002"}
    keyed |= {"name": "hello_world", "language": "en", "idempotencyKey": "k1"}
    lines.append({**keyed, "lane": "transactional"})
    lines.append(keyed)  # the same key again: a duplicate of the one before
    results = dispatcher.send_many(lines)
    assert isinstance(results[3], InvalidRequest) and "body is required" in str(results[3])
    assert isinstance(results[7], InvalidRequest)
    ok = [r for r in results if isinstance(r, Enqueued)]
    assert len(ok) == 252
    assert ok[-1].duplicate and ok[-1].job_id == ok[-2].job_id
    # 250 bulk jobs of one number travel as 3 batch messages of at most 100 jobs.
    assert redis_client.llen("waapi.cloud.15550000001.bulk") == 3
    assert redis_client.llen("waapi.cloud.15550000002.tx") == 1
    records = dispatcher.jobs(limit=300)
    assert len(records) == 251


def test_one_options_model_for_every_way_in(dispatcher: Dispatcher) -> None:
    """A job's options have one name and one rule: Python keywords, a JobOptions, a job
    line (camelCase, and ``priority`` as the former name of ``lane``)."""
    body = {"to": TO, "fromPhoneNo": FROM, "body": "hi"}
    by_keyword = dispatcher.prepare("cloud", "text", body, JobOptions.of(lane="bulk"))
    line = parse_job({"type": "text", **body, "lane": "bulk", "idempotencyKey": "k"})
    former = parse_job({"type": "text", **body, "priority": "bulk"})
    assert by_keyword.lane == line.options.lane == former.options.lane == "bulk"
    assert line.options.idempotency_key == "k" and "lane" not in line.body
    for wrong in (
        lambda: JobOptions.of(lane="urgent"),
        lambda: parse_job({"type": "text", **body, "lane": "urgent"}),
        lambda: parse_job({"type": "text", **body, "priority": "urgent"}),
        lambda: dispatcher.send_text(TO, FROM, "hi", lane="urgent"),
    ):
        with pytest.raises(InvalidRequest, match=r"^lane must be one of"):
            wrong()
    with pytest.raises(InvalidRequest, match=r"^notBefore must carry a time zone"):
        JobOptions.of(not_before=datetime(2030, 1, 1))
    envelope = dispatcher.prepare(
        "cloud", "text", body, JobOptions.of(idempotency_key="k", campaign_id="c")
    )
    assert (envelope.lane, envelope.idempotency_key, envelope.campaign_id) == (
        "transactional",
        "k",
        "c",
    )
    assert set(JobOptions.model_fields) <= set(type(envelope).model_fields)


def test_a_send_the_numbers_key_may_not_make_is_refused_at_enqueue(redis_url: str) -> None:
    """The reference lists each endpoint's permissions; a key's configured scopes are
    checked before anything is queued, with the gateway's own message."""
    from dispatcher.errors import NotPermitted

    keys = [
        {"name": "sender", "key": "waapi_a", "numbers": [FROM], "scopes": ["messages.send"]},
        {
            "name": "reader",
            "key": "waapi_b",
            "numbers": ["+15550000002"],
            "scopes": ["messages.read"],
        },
    ]
    settings = make_settings(redis_url, waapi_keys=json.dumps(keys))
    upsert = {"to": TO, "fromPhoneNo": FROM, "type": "text", "payload": {"body": "hi"}}
    with Dispatcher(settings) as dispatcher:
        with pytest.raises(NotPermitted, match=r"needs .contacts.write. for combined send"):
            dispatcher.send("cloud", "send", {**upsert, "contact": {"first_name": "Ada"}})
        with pytest.raises(NotPermitted, match=r"scope .read. does not permit send actions"):
            dispatcher.send_text(TO, "+15550000002", "hi")
        # The endpoint needs contacts.write even when it upserts nothing (so the gateway,
        # and the sandbox playing it, answer); a plain send needs messages.send only.
        with pytest.raises(NotPermitted, match=r"needs 'contacts.write'"):
            dispatcher.send("cloud", "send", {**upsert, "contact": {}})
        assert dispatcher.ledger.client.zcard("waapi:recent") == 0  # nothing queued
        assert dispatcher.send_text(TO, FROM, "hi")
