"""Signed webhook bodies of every shape through the real HTTP service: a body that is not
a valid envelope answers 400 naming the path and the rule and changes nothing; parts the
dispatcher does not act on are counted and streamed as ``unrecognised``; nothing
answers 5xx."""

from __future__ import annotations

import copy
import hashlib
import hmac
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatcher.sandbox.webhooks import inbound_payload, status_payload
from tests.strategies import json_values
from tests.support.data import BEARER, DATA, SANDBOX_KEYS
from tests.support.processes import RedisProcess, SandboxProcess
from tests.support.stack import Stack, own_stack
from tests.support.waiting import wait_until

FROM = "+15550000001"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, redis.Redis]]:
    work = Path(tmp_path_factory.mktemp("webhook-shapes"))
    redis_server = RedisProcess.start(work / "redis")
    sandbox = SandboxProcess.start()
    stack = Stack(redis_server, sandbox, work)
    url = stack.start_serve()
    client = redis.Redis(port=redis_server.port)
    yield url, client
    client.close()
    stack.stop()
    sandbox.stop()
    redis_server.stop()


def deliver(url: str, payload: Any) -> requests.Response:
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(b"verify_sandbox", body, hashlib.sha256).hexdigest()
    return requests.post(
        url + "/v1/webhooks/waapi",
        data=body,
        headers={"X-Hub-Signature-256": signature, "Content-Type": "application/json"},
        timeout=10,
    )


def stream_length(client: redis.Redis) -> int:
    return int(client.xlen("waapi:events"))


def good_status(status: str = "delivered") -> dict[str, Any]:
    return status_payload(FROM, "wamid.SHAPE", "+15553330001", status)


def with_status(**fields: Any) -> dict[str, Any]:
    payload = good_status()
    payload["entry"][0]["changes"][0]["value"]["statuses"][0].update(fields)
    return payload


@pytest.mark.parametrize(
    ("payload", "named"),
    [
        ([], "body must be an object"),
        ({"object": 1, "entry": []}, "object must be a string"),
        ({"object": "whatsapp_business_account", "entry": "x"}, "entry must be a list"),
        ({"object": "whatsapp_business_account", "entry": [1, 2, 3]}, "entry[0] must be an object"),
        ({"entry": []}, "object is required"),
        ({"object": "whatsapp_business_account"}, "entry is required"),
        (
            {"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {}}]}]},
            "entry[0].changes[0].field is required",
        ),
        (
            {
                "object": "whatsapp_business_account",
                "entry": [{"changes": [{"field": "messages", "value": {"statuses": "read"}}]}],
            },
            "entry[0].changes[0].value.statuses must be a list",
        ),
        (with_status(id=None), "entry[0].changes[0].value.statuses[0].id must be a string"),
        (with_status(status=7), "entry[0].changes[0].value.statuses[0].status must be a string"),
        (
            with_status(errors=[{"code": {"x": 1}}]),
            "entry[0].changes[0].value.statuses[0].errors[0].code",
        ),
    ],
)
def test_a_signed_body_that_is_not_an_envelope_is_refused_naming_the_path(
    service: tuple[str, redis.Redis], payload: Any, named: str
) -> None:
    url, client = service
    before = stream_length(client)
    answer = deliver(url, payload)
    assert answer.status_code == 400, answer.text
    assert named in answer.json()["error"]
    assert stream_length(client) == before  # refused whole: nothing applied


def test_parts_not_acted_on_are_counted_and_streamed(service: tuple[str, redis.Redis]) -> None:
    url, client = service
    payload = good_status()
    payload["entry"][0]["changes"][0]["value"]["statuses"].append(
        {"id": "wamid.OTHER", "status": "deleted"}
    )
    payload["entry"][0]["changes"][0]["value"]["surprise"] = {"a": 1}
    template = copy.deepcopy(payload["entry"][0]["changes"][0])
    template["field"] = "account_update"
    payload["entry"][0]["changes"].append(template)
    since = client.xrevrange("waapi:events", count=1)
    answer = deliver(url, payload)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["statuses"] == {"parked": 1}  # the known status was applied (its job is not here)
    assert [(u["kind"], u["name"]) for u in body["unrecognised"]] == [
        ("key", "surprise"),
        ("status", "deleted"),
        ("field", "account_update"),  # a change we do not handle, whole
    ]
    events = client.xrange("waapi:events", min=since[0][0] if since else "-")
    unrecognised = [
        {k.decode(): v.decode() for k, v in fields.items()}
        for _, fields in events
        if fields[b"state"] == b"unrecognised"
    ]
    assert {(e["kind"], e["name"], e["path"]) for e in unrecognised} >= {
        ("status", "deleted", "entry[0].changes[0].value.statuses[1].status"),
        ("field", "account_update", "entry[0].changes[1].field"),
    }
    metrics = requests.get(url + "/metrics", headers=BEARER["prometheus"], timeout=10).text
    assert 'waapi_webhook_unrecognised_total{kind="status"}' in metrics
    other = deliver(url, {"object": "instagram", "entry": []})
    assert other.status_code == 200
    assert other.json()["unrecognised"] == [
        {"kind": "object", "path": "object", "name": "instagram"}
    ]


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON = json_values(SCALARS, max_leaves=12, key_size=12, items=4)
VALID = [
    good_status("delivered"),
    good_status("failed"),
    inbound_payload(FROM, "+15557770001", "wamid.IN", text="hi"),
    inbound_payload(FROM, "+15557770002", "wamid.IN2", button_id="b1"),
]


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into ``value`` (keys and indexes), the root included."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths(child, (*prefix, index))
    return found


@st.composite
def damaged_envelopes(draw: st.DrawFn) -> Any:
    """A real envelope with one part (any depth) replaced by arbitrary JSON."""
    payload = copy.deepcopy(draw(st.sampled_from(VALID)))
    path = draw(st.sampled_from(paths(payload)))
    replacement = draw(JSON)
    if not path:
        return replacement
    parent = payload
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = replacement
    return payload


def assert_clean_answer(answer: requests.Response) -> None:
    assert answer.status_code in (200, 400), answer.text
    body = answer.json()
    if answer.status_code == 400:
        assert body["success"] is False
        rule = body["error"]
        assert any(word in rule for word in ("must", "required", "not JSON")), rule
    else:
        assert body["ok"] is True


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(payload=st.one_of(JSON, damaged_envelopes()))
def test_any_signed_json_answers_200_or_400_never_5xx(
    service: tuple[str, redis.Redis], payload: Any
) -> None:
    url, client = service
    before = stream_length(client)
    answer = deliver(url, payload)
    assert_clean_answer(answer)
    if answer.status_code == 400:
        assert stream_length(client) == before


def test_a_change_is_routed_by_its_phone_number_id_when_configured(tmp_path: Path) -> None:
    """The reference names a number by ``metadata.phone_number_id``; configured, it wins
    over the display number (here deliberately another of our numbers)."""
    keys = copy.deepcopy(SANDBOX_KEYS)
    keys[0]["phone_number_ids"] = {"+15550000002": "106540352242922"}
    with own_stack(tmp_path, waapi_keys=json.dumps(keys)) as stack:
        url = stack.start_serve()
        customer = "+15557770001"
        routed = inbound_payload(FROM, customer, "wamid.IN1", text="hi")
        routed["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "106540352242922"
        unknown_id = inbound_payload(FROM, "+15557770002", "wamid.IN2", text="hi")
        unknown_id["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "999"
        assert deliver(url, routed).status_code == 200
        assert deliver(url, unknown_id).status_code == 200
        client = redis.Redis(port=stack.redis.port)
        # The window opened for the number the id names, not for the display number.
        assert client.exists(f"waapi:win:+15550000002:{customer}") == 1
        assert client.exists(f"waapi:win:{FROM}:{customer}") == 0
        # An id nobody configured falls back to the display number.
        assert client.exists(f"waapi:win:{FROM}:+15557770002") == 1
        inbound = [
            fields
            for _, fields in client.xrange("waapi:events")
            if fields.get(b"state") == b"inbound"
        ]
        assert [f[b"number"] for f in inbound] == [b"+15550000002", FROM.encode()]
        client.close()


def test_incoming_content_reaches_the_event_stream(service: tuple[str, redis.Redis]) -> None:
    """What a customer sends is kept: the reference's incoming image (media id, mime type,
    sha256, caption), and a location, shared contacts and a template button tap."""
    url, client = service
    image = json.loads((DATA / "webhooks" / "incoming_image.json").read_text())
    others = inbound_payload(FROM, "+15557770010", "wamid.LOC", text="x")
    [message] = others["entry"][0]["changes"][0]["value"]["messages"]
    del message["text"]
    message |= {
        "type": "location",
        "location": {"latitude": 52.52, "longitude": 13.405, "name": "Office"},
        "contacts": [{"name": {"formatted_name": "Ada"}, "phones": [{"phone": "+4930"}]}],
        "button": {"text": "Stop promotions", "payload": "stop"},
    }
    start = (
        client.xinfo_stream("waapi:events")["last-generated-id"]
        if client.exists("waapi:events")
        else b"0-0"
    )
    assert deliver(url, image).status_code == 200
    assert deliver(url, others).status_code == 200
    inbound = [
        {k.decode(): v.decode() for k, v in fields.items()}
        for _, fields in client.xrange("waapi:events", min=b"(" + start)
        if fields.get(b"state") == b"inbound"
    ]
    assert [e["type"] for e in inbound] == ["image", "location"]
    got_image, got_location = inbound
    assert {k: got_image[k] for k in ("media_id", "mime_type", "sha256", "caption")} == {
        "media_id": "1234567890123456",
        "mime_type": "image/jpeg",
        "sha256": "A2k...",
        "caption": "Is this the right colour?",
    }
    assert (got_location["latitude"], got_location["longitude"]) == ("52.52", "13.405")
    assert got_location["location_name"] == "Office"
    assert json.loads(got_location["contacts"])[0]["name"]["formatted_name"] == "Ada"
    assert (got_location["reply_id"], got_location["reply_title"]) == ("stop", "Stop promotions")


def template_change(field: str, **value: Any) -> dict[str, Any]:
    """A template webhook as Meta sends it (``message_template_*_update``)."""
    change = {"field": field, "value": value}
    return {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [change]}]}


def test_a_stopped_template_pauses_its_campaigns_and_approval_resumes_them(
    tmp_path: Path,
) -> None:
    from dispatcher.campaigns import Campaigns, rows
    from tests.support.data import campaign_spec

    with own_stack(tmp_path) as stack:
        url = stack.start_serve()
        with stack.dispatcher() as dispatcher:
            campaigns = Campaigns(dispatcher)
            audience = io.StringIO('{"to": "+15551230001", "name": "A", "awb": "1"}\n')
            uses_it = campaigns.create(campaign_spec(), rows(audience, "jsonl")).campaign_id
            audience = io.StringIO('{"to": "+15551230002"}\n')
            other = campaigns.create(
                campaign_spec(
                    message={"type": "template", "body": {"name": "hello_world", "language": "en"}}
                ),
                rows(audience, "jsonl"),
            ).campaign_id
            combined = campaigns.create(  # the template inside a combined send
                campaign_spec(
                    message={
                        "type": "send",
                        "body": {
                            "type": "template",
                            "payload": {"name": "order_shipped", "language": "en"},
                        },
                    }
                ),
                rows(io.StringIO(audience.getvalue()), "jsonl"),
            ).campaign_id
            by_hand = campaigns.create(
                campaign_spec(), rows(io.StringIO(audience.getvalue()), "jsonl")
            )
            campaigns.pause(by_hand.campaign_id)  # paused by a person: stays paused
            status = "message_template_status_update"
            started = time.monotonic()
            paused = deliver(
                url,
                template_change(
                    status,
                    event="PAUSED",
                    message_template_id=7,
                    message_template_name="order_shipped",
                    message_template_language="en_US",
                    reason="LOW_QUALITY",
                ),
            )
            assert paused.status_code == 200, paused.text
            info = campaigns.get(uses_it)
            assert info is not None and info["state"] == "paused"
            assert time.monotonic() - started < 1.0  # within the webhook's own request
            assert "template order_shipped (en_US) is PAUSED: LOW_QUALITY" in info["reason"]
            assert campaigns.get(combined)["state"] == "paused"  # type: ignore[index]
            assert campaigns.get(other)["state"] == "scheduled"  # type: ignore[index]
            listed = requests.get(url + "/v1/templates", headers=BEARER["crm"], timeout=10).json()
            assert [(t["name"], t["language"], t["status"]) for t in listed["data"]] == [
                ("order_shipped", "en_US", "PAUSED")
            ]
            approved = deliver(
                url,
                template_change(
                    status,
                    event="APPROVED",
                    message_template_name="order_shipped",
                    message_template_language="en_US",
                ),
            )
            assert approved.status_code == 200
            assert campaigns.get(uses_it)["state"] == "scheduled"  # type: ignore[index]
            assert campaigns.get(combined)["state"] == "scheduled"  # type: ignore[index]
            assert campaigns.get(by_hand.campaign_id)["state"] == "paused"  # type: ignore[index]
            quality = deliver(
                url,
                template_change(
                    "message_template_quality_update",
                    message_template_name="order_shipped",
                    message_template_language="en_US",
                    previous_quality_score="GREEN",
                    new_quality_score="RED",
                ),
            )
            assert quality.status_code == 200 and "unrecognised" not in quality.json()
            client = redis.Redis(port=stack.redis.port)
            kinds = [f[b"state"] for _, f in client.xrange("waapi:events")]
            assert kinds.count(b"template_status") == 2 and b"template_quality" in kinds
            client.close()


def test_jobs_for_a_stopped_template_are_held_and_go_when_it_is_approved(
    tmp_path: Path,
) -> None:
    """Not only campaigns: any job that sends a template Meta has stopped waits (not an
    attempt) instead of being dropped by Meta, and goes once the template is approved."""
    status = "message_template_status_update"
    stopped = template_change(
        status,
        event="DISABLED",
        message_template_name="order_shipped",
        message_template_language="en_US",
    )
    approved = template_change(
        status,
        event="REINSTATED",
        message_template_name="order_shipped",
        message_template_language="en_US",
    )
    params = [{"type": "body", "parameters": [{"type": "text", "text": "x"}] * 2}]
    with own_stack(tmp_path) as stack:
        url = stack.start_serve()
        assert deliver(url, stopped).status_code == 200
        stack.start_worker(threads=4)
        stack.start_beat()
        with stack.dispatcher() as dispatcher:
            held = dispatcher.send_template(
                "+15551230001", "+15550000001", "order_shipped", "en", params
            )
            other = dispatcher.send_template("+15551230002", "+15550000001", "hello_world", "en")
            assert stack.wait_states(dispatcher, [other]) == {other: "sent"}

            def waiting() -> bool:
                job = dispatcher.job(held)
                return job is not None and job.waiting_for is not None

            wait_until(waiting, timeout_s=30)
            job = dispatcher.job(held)
            assert job is not None and (job.state, job.attempts) == ("retry_wait", 0)
            assert job.waiting_for == (
                "template order_shipped (en_US) is DISABLED: held until Meta approves it again"
            )
            assert [m["to"] for m in stack.sandbox.sent()] == ["+15551230002"]
            approved_at = time.monotonic()
            assert deliver(url, approved).status_code == 200
            assert stack.wait_states(dispatcher, [held]) == {held: "sent"}
            print(f"\nheld job sent {time.monotonic() - approved_at:.1f} s after the approval")
            assert time.monotonic() - approved_at < 10  # at once, not at the next recheck
