"""The HTTP service (uvicorn on loopback) with real workers and the sandbox posting real
signed webhooks: enqueue in the gateway's shapes, look jobs up, and a delivery ledger
that only moves forward whatever order and how often the webhooks come."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from dispatcher.ledger import schema
from dispatcher.producer.api import Dispatcher
from dispatcher.sandbox.webhooks import status_payload
from tests.support.data import BEARER, TOKENS, campaign_spec
from tests.support.processes import RedisProcess, SandboxProcess
from tests.support.stack import Stack, own_stack
from tests.support.waiting import wait_until

FROM = "+15550000001"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = Path(tmp_path_factory.mktemp("http"))
    redis_server = RedisProcess.start(work / "redis")
    sandbox = SandboxProcess.start("--seed", "5")
    stack = Stack(redis_server, sandbox, work)
    stack.url = stack.start_serve()  # type: ignore[attr-defined]
    stack.start_worker(threads=8)
    stack.start_beat()
    # Its heartbeat registers it: the tests start once it consumes (readiness counts it).
    with redis.Redis.from_url(redis_server.url) as client:
        wait_until(lambda: client.zcard(schema.WORKERS) >= 1, timeout_s=60)
    yield stack
    stack.stop()
    sandbox.stop()
    redis_server.stop()


@pytest.fixture
def url(stack: Stack) -> str:
    stack.sandbox.reset()
    stack.sandbox.webhooks(url=stack.url + "/v1/webhooks/waapi")  # type: ignore[attr-defined]
    return str(stack.url)  # type: ignore[attr-defined]


@pytest.fixture
def dispatcher(stack: Stack) -> Iterator[Dispatcher]:
    with stack.dispatcher() as dispatcher:
        yield dispatcher


def post(url: str, path: str, body: Any, token: str = "crm", **kw: Any) -> requests.Response:
    return requests.post(url + path, json=body, headers=BEARER[token], timeout=10, **kw)


def hello(to: str, **extra: Any) -> dict[str, Any]:
    return {"to": to, "fromPhoneNo": FROM, "name": "hello_world", "language": "en", **extra}


def queued_template(url: str, to: str, **fields: Any) -> str:
    """Queue ``hello_world`` to ``to`` over HTTP; the job id."""
    answer = post(url, "/v1/whatsapp-api/messages/template", hello(to, **fields))
    return str(answer.json()["data"]["jobId"])


def job_count(dispatcher: Dispatcher) -> int:
    return int(dispatcher.ledger.client.zcard("waapi:recent"))


# --- enqueue ------------------------------------------------------------------------------


def test_enqueue_answers_202_and_the_job_reaches_read(
    stack: Stack, url: str, dispatcher: Dispatcher
) -> None:
    answer = post(url, "/v1/whatsapp-api/messages/template", hello("+15553330001"))
    assert answer.status_code == 202
    body = answer.json()
    assert body["success"] is True and body["data"]["status"] == "queued"
    job_id = body["data"]["jobId"]
    # Each status is its own delivery: "delivered" may land just after "read" does.
    wait_until(lambda: {"delivered", "read"} <= set(dispatcher.job(job_id).times), timeout_s=30)
    looked_up = requests.get(f"{url}/v1/jobs/{job_id}", headers=BEARER["crm"], timeout=5).json()
    assert looked_up["data"]["state"] == "read"
    assert set(looked_up["data"]["times"]) >= {"queued", "sending", "sent", "delivered", "read"}


def test_a_repeated_idempotency_key_returns_the_first_job(url: str, dispatcher: Dispatcher) -> None:
    first = post(
        url, "/v1/whatsapp-api/messages/template", hello("+15553330002", idempotencyKey="order-77")
    )
    again = post(
        url, "/v1/whatsapp-api/messages/template", hello("+15553330002", idempotencyKey="order-77")
    )
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["data"]["jobId"] == first.json()["data"]["jobId"]
    assert again.json()["data"]["duplicate"] is True


def test_invalid_bodies_are_refused_in_the_gateways_format_and_queue_nothing(
    url: str, dispatcher: Dispatcher
) -> None:
    before = job_count(dispatcher)
    cases = [
        (
            "/v1/whatsapp-api/messages/buttons",
            {
                "to": "+15553330003",
                "fromPhoneNo": FROM,
                "bodyText": "b",
                "buttons": [{"id": str(i), "title": "t"} for i in range(4)],
            },
            "(#100) buttons must be 1-3 items",
        ),
        (
            "/v1/whatsapp-api/messages/text",
            {"to": "12", "fromPhoneNo": FROM, "body": "x"},
            "(#100) to must be an E.164 number",
        ),
        (
            "/v1/whatsapp-api/messages/text",
            {"to": "+15553330003", "fromPhoneNo": "+15550000009", "body": "x"},
            "fromPhoneNo is not a number of any configured key",
        ),
        (
            "/v1/whatsapp-api/messages/template",
            hello("+15553330003", lane="urgent"),
            "lane must be one of",
        ),
        (
            "/v1/whatsapp-api/messages/template",
            hello("+15553330003", expiresAt="tomorrow"),
            "expiresAt must be an ISO 8601 date-time",
        ),
        (
            "/v1/whatsapp-qr/messages/location",
            {"to": "+15553330003", "sessionId": "s", "latitude": 100, "longitude": 0},
            "latitude must be at most 90",
        ),
    ]
    for path, body, message in cases:
        answer = post(url, path, body)
        assert answer.status_code == 400, (path, answer.text)
        assert answer.json()["success"] is False
        assert message in answer.json()["error"]
    not_json = requests.post(
        url + "/v1/whatsapp-api/messages/text", data=b"{not json", headers=BEARER["crm"], timeout=5
    )
    assert not_json.status_code == 400 and "valid JSON" in not_json.json()["error"]
    assert job_count(dispatcher) == before


def test_oversized_bodies_are_refused_with_413(url: str) -> None:
    big = {"to": "+15553330004", "fromPhoneNo": FROM, "body": "x" * 2_000_000}
    answer = post(url, "/v1/whatsapp-api/messages/text", big)
    assert answer.status_code == 413
    assert "larger than" in answer.json()["error"]


def test_bulk_answers_each_job(url: str, dispatcher: Dispatcher) -> None:
    jobs = [{"type": "template", **hello(f"+1555444{n:04d}")} for n in range(5)]
    jobs.insert(2, {"type": "text", "to": "+15554440100", "fromPhoneNo": FROM})
    jobs.append(
        {
            "type": "send",
            "sendType": "template",
            "to": "+15554440101",
            "fromPhoneNo": FROM,
            "payload": {"name": "hello_world", "language": "en"},
            "contact": {"first_name": "Ann"},
        }
    )
    answer = post(url, "/v1/messages/bulk", {"jobs": jobs})
    assert answer.status_code == 200
    data = answer.json()["data"]
    assert len(data) == 7
    assert "body is required" in data[2]["error"]
    ids = [d["jobId"] for i, d in enumerate(data) if i != 2]
    states = {dispatcher.job(i).state for i in ids}  # type: ignore[union-attr]
    assert states <= {"queued", "sending", "sent", "delivered", "read"}
    assert dispatcher.job(ids[-1]).type == "send"  # type: ignore[union-attr]
    too_many = post(url, "/v1/messages/bulk", {"jobs": [jobs[0]] * 1001})
    assert too_many.status_code == 400 and "at most 1000" in too_many.json()["error"]


def test_listing_filters_and_pages(url: str, dispatcher: Dispatcher) -> None:
    for n in range(3):
        post(
            url,
            "/v1/whatsapp-api/messages/template",
            {**hello(f"+1555555{n:04d}"), "fromPhoneNo": "+15550000002"},
        )
    page = requests.get(
        url + "/v1/jobs",
        params={"number": "+15550000002", "limit": 2},
        headers=BEARER["crm"],
        timeout=5,
    ).json()
    assert len(page["data"]) == 2 and page["nextCursor"]
    rest = requests.get(
        url + "/v1/jobs",
        params={"number": "+15550000002", "limit": 2, "cursor": page["nextCursor"]},
        headers=BEARER["crm"],
        timeout=5,
    ).json()
    ids = [j["id"] for j in page["data"] + rest["data"]]
    assert len(ids) == len(set(ids)) >= 3
    assert all(j["fromPhoneNo"] == "+15550000002" for j in page["data"] + rest["data"])
    bad = requests.get(url + "/v1/jobs", params={"state": "lost"}, headers=BEARER["crm"], timeout=5)
    assert bad.status_code == 400


def test_health_readiness_and_docs(url: str) -> None:
    assert requests.get(url + "/healthz", timeout=5).json() == {"ok": True}
    ready = requests.get(url + "/readyz", timeout=5)
    assert ready.status_code == 200 and ready.json()["workers"] >= 1
    assert requests.get(url + "/docs", timeout=5).status_code == 200
    spec = requests.get(url + "/openapi.json", timeout=5).json()
    assert "/v1/whatsapp-api/messages/template" in spec["paths"]
    assert "/v1/webhooks/waapi" in spec["paths"]


# --- webhooks -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mode",
    [
        {"duplicate_rate": 1.0},
        {"reorder": True, "step_ms": 5},
        {"before_response": True},
        {"duplicate_rate": 1.0, "reorder": True, "step_ms": 5},
    ],
)
def test_statuses_end_in_read_however_they_arrive(
    url: str, dispatcher: Dispatcher, stack: Stack, mode: dict[str, Any]
) -> None:
    stack.sandbox.webhooks(**mode)
    billed_before = int(dispatcher.ledger.client.hget("waapi:m:billable", f"{FROM}|marketing") or 0)
    ids = [queued_template(url, f"+1555666{n:04d}") for n in range(8)]

    def settled(job_id: str) -> bool:
        # Each status is its own delivery, so "read" may land before "delivered" does: a
        # late "delivered" keeps the state and only notes when it happened.
        job = dispatcher.job(job_id)
        return job is not None and job.state == "read" and {"sent", "delivered"} <= set(job.times)

    wait_until(lambda: all(settled(i) for i in ids), timeout_s=40)
    for job_id in ids:
        job = dispatcher.job(job_id)
        assert job is not None and job.state == "read"
        assert job.times["sent"] <= job.times["read"]
        # Meta's pricing (on 'sent' and on 'delivered') is kept on the job...
        assert job.pricing is not None
        assert {k: job.pricing[k] for k in ("category", "billable", "model", "origin")} == {
            "category": "marketing",
            "billable": True,
            "model": "CBP",
            "origin": "marketing",
        }
    # ... and each billable message counted once, however often its pricing came.
    billed = int(dispatcher.ledger.client.hget("waapi:m:billable", f"{FROM}|marketing") or 0)
    assert billed - billed_before == len(ids)


def test_a_failed_status_carries_metas_code(url: str, dispatcher: Dispatcher, stack: Stack) -> None:
    stack.sandbox.webhooks(failed_recipients=["+15556660099"])
    job_id = queued_template(url, "+15556660099")
    wait_until(lambda: dispatcher.job(job_id).state == "failed", timeout_s=30)
    error = dispatcher.job(job_id).error  # type: ignore[union-attr]
    assert error is not None and error["code"] == 131026


def signed(body: bytes, token: str = "verify_sandbox") -> str:
    return "sha256=" + hmac.new(token.encode(), body, hashlib.sha256).hexdigest()


def status_body(wamid: str, status: str) -> bytes:
    return json.dumps(status_payload(FROM, wamid, "+15556660100", status)).encode()


def test_bad_signatures_change_nothing(url: str, dispatcher: Dispatcher, stack: Stack) -> None:
    stack.sandbox.webhooks(statuses=["sent"])
    job_id = queued_template(url, "+15556660100")
    wait_until(lambda: dispatcher.job(job_id).state == "sent", timeout_s=30)
    wamid = dispatcher.job(job_id).wamid  # type: ignore[union-attr]
    body = status_body(str(wamid), "read")
    hook = url + "/v1/webhooks/waapi"
    for headers in (
        {},
        {"X-Hub-Signature-256": "sha256=" + "0" * 64},
        {"X-Hub-Signature-256": signed(body, "not_the_token")},
        {"X-Hub-Signature-256": signed(body + b" ")},
    ):  # altered after signing
        answer = requests.post(
            hook, data=body, headers={**headers, "X-WAAPI-Delivery": "d1"}, timeout=5
        )
        assert answer.status_code == 401
    assert dispatcher.job(job_id).state == "sent"
    good = {"X-Hub-Signature-256": signed(body), "X-WAAPI-Delivery": "d1"}
    assert requests.post(hook, data=body, headers=good, timeout=5).json()["statuses"] == {"read": 1}
    assert dispatcher.job(job_id).state == "read"
    replay = requests.post(hook, data=body, headers=good, timeout=5).json()
    assert replay == {"ok": True, "duplicate": True}
    late = status_body(str(wamid), "delivered")
    answer = requests.post(
        hook,
        data=late,
        headers={"X-Hub-Signature-256": signed(late), "X-WAAPI-Delivery": "d2"},
        timeout=5,
    )
    assert answer.json()["statuses"] == {"read": 1}  # a late delivered does not go back
    assert dispatcher.job(job_id).state == "read"


def test_a_status_before_the_send_is_recorded_waits_for_it(
    url: str, dispatcher: Dispatcher
) -> None:
    body = status_body("wamid.EARLY", "delivered")
    hook = url + "/v1/webhooks/waapi"
    parked = requests.post(
        hook, data=body, headers={"X-Hub-Signature-256": signed(body)}, timeout=5
    ).json()
    assert parked["statuses"] == {"parked": 1}
    # Play the worker by hand: record the job without a queue message, so none of the
    # running workers takes it, then claim it and record the gateway's answer.
    envelope = dispatcher.prepare("cloud", "template", hello("+15556660101"))
    dispatcher.ledger.enqueue([envelope], mode="none")
    claim = dispatcher.ledger.claim(envelope.id)
    assert not isinstance(claim, str)
    dispatcher.ledger.finish(envelope.id, claim.attempt, "sent", wamid="wamid.EARLY")
    record = dispatcher.job(envelope.id)
    assert record is not None and record.state == "delivered"
    assert {"sent", "delivered"} <= set(record.times)


def test_inbound_messages_open_the_window_and_reach_the_stream(
    url: str, dispatcher: Dispatcher, stack: Stack
) -> None:
    client: redis.Redis = dispatcher.ledger.client
    last = client.xrevrange("waapi:events", count=1)
    since = last[0][0] if last else "0"
    stack.sandbox.inbound(
        "+15557770001", FROM, text=None, buttonId="track", buttonTitle="Track", contextId="wamid.X"
    )
    wait_until(lambda: client.exists("waapi:win:+15550000001:+15557770001"), timeout_s=10)

    def inbound_events() -> list[dict[str, str]]:
        events = [
            {k.decode(): v.decode() for k, v in f.items()}
            for _, f in client.xrange("waapi:events", min=since)
        ]
        return [e for e in events if e["state"] == "inbound"]

    # The window opens a moment before the event is streamed (two writes of one request).
    wait_until(lambda: bool(inbound_events()), timeout_s=10)
    inbound = inbound_events()
    assert inbound[-1]["reply_id"] == "track" and inbound[-1]["context"] == "wamid.X"
    assert inbound[-1]["from"] == "+15557770001"


# --- window-aware sending -----------------------------------------------------------------


def text_with_fallback(to: str) -> dict[str, Any]:
    """A free-form text that goes as ``hello_world`` if the window is closed."""
    fallback = {"name": "hello_world", "language": "en"}
    return {"to": to, "fromPhoneNo": FROM, "body": "hello", "fallbackTemplate": fallback}


def test_known_closed_window_fails_fast_or_sends_the_fallback(
    url: str, dispatcher: Dispatcher, stack: Stack
) -> None:
    customer = "+15558880001"
    stack.sandbox.inbound(customer, FROM)
    client: redis.Redis = dispatcher.ledger.client
    wait_until(lambda: client.exists(f"waapi:win:{FROM}:{customer}"), timeout_s=10)
    client.delete(f"waapi:win:{FROM}:{customer}")  # 24 hours later
    requests_before = stack.sandbox.stats()["counters"].get("requests", 0)
    text = post(
        url,
        "/v1/whatsapp-api/messages/text",
        {"to": customer, "fromPhoneNo": FROM, "body": "hello"},
    ).json()["data"]["jobId"]
    wait_until(lambda: dispatcher.job(text).state == "failed", timeout_s=30)
    assert dispatcher.job(text).error["code"] == 131047  # type: ignore[index,union-attr]
    assert stack.sandbox.stats()["counters"].get("requests", 0) == requests_before
    with_fallback = post(
        url,
        "/v1/whatsapp-api/messages/text",
        text_with_fallback(customer),
    ).json()["data"]["jobId"]
    wait_until(
        lambda: dispatcher.job(with_fallback).state in ("sent", "delivered", "read"), timeout_s=30
    )
    assert dispatcher.job(with_fallback).fallback  # type: ignore[union-attr]
    assert stack.sandbox.sent()[-1]["type"] == "template"


def test_gateway_131047_sends_the_fallback_and_131050_suppresses_bulk(
    url: str, dispatcher: Dispatcher, stack: Stack
) -> None:
    fresh = "+15558880002"  # never wrote: the gateway says the window is closed
    job_id = post(
        url,
        "/v1/whatsapp-api/messages/text",
        text_with_fallback(fresh),
    ).json()["data"]["jobId"]
    wait_until(lambda: dispatcher.job(job_id).state in ("sent", "delivered", "read"), timeout_s=30)
    record = dispatcher.job(job_id)
    assert record is not None and record.fallback and record.attempts == 1
    opted_out = "+15558880003"
    stack.sandbox.faults(recipient_errors={opted_out: 131050})
    first = queued_template(url, opted_out)
    wait_until(lambda: dispatcher.job(first).state == "failed", timeout_s=30)
    later = queued_template(url, opted_out, lane="bulk")
    wait_until(lambda: dispatcher.job(later).state == "skipped", timeout_s=30)
    assert "suppression list" in dispatcher.job(later).error["message"]  # type: ignore[index,union-attr]
    stack.sandbox.faults(recipient_errors={})


def test_a_send_the_key_may_not_make_answers_the_gateways_403(tmp_path: Path) -> None:
    keys = [{"name": "crm", "key": "waapi_sandbox", "numbers": [FROM], "scopes": ["messages.send"]}]
    with own_stack(tmp_path, waapi_keys=json.dumps(keys)) as stack:
        url = stack.start_serve()
        body = {"to": "+15553339001", "fromPhoneNo": FROM, "type": "text"}
        body |= {"payload": {"body": "hi"}, "contact": {"first_name": "Ada"}}
        answer = post(url, "/v1/whatsapp-api/messages/send", body)
        assert answer.status_code == 403
        assert answer.json() == {
            "success": False,
            "message": "API key needs 'contacts.write' for combined send+upsert",
        }
        with stack.dispatcher() as dispatcher:
            assert dispatcher.jobs() == []  # nothing queued


def test_qr_sessions_through_the_service(url: str, stack: Stack) -> None:
    answer = requests.get(url + "/v1/whatsapp-qr/sessions", headers=BEARER["crm"], timeout=10)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    expected = [s.session_id for s in stack.sandbox.client().qr_sessions()]
    assert body["success"] is True and body["count"] == len(expected) > 0
    assert [s["sessionId"] for s in body["data"]] == expected
    refused = requests.get(url + "/v1/whatsapp-qr/sessions", headers=BEARER["sender"], timeout=10)
    assert refused.status_code == 403


def test_swagger_and_redoc_are_served_from_the_package(url: str) -> None:
    """No CDN: every script, stylesheet and icon the docs pages load comes from here."""
    for page in ("/docs", "/redoc"):
        html = requests.get(url + page, timeout=10)
        assert html.status_code == 200
        assets = re.findall(r'(?:src|href)="([^"]+)"', html.text)
        assert assets, html.text
        assert not [a for a in assets if a.startswith(("http:", "https:", "//"))], assets
        assert "cdn" not in html.text and "fonts.googleapis" not in html.text
        for asset in assets:
            fetched = requests.get(url + asset, timeout=10)
            assert fetched.status_code == 200 and len(fetched.content) > 1000, asset


def test_openapi_names_the_bearer_token_where_it_is_needed(url: str) -> None:
    spec = requests.get(url + "/openapi.json", timeout=10).json()
    scheme = spec["components"]["securitySchemes"]["producerToken"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    secured = {
        (path, method)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if op.get("security") == [{"producerToken": []}]
    }
    assert ("/v1/jobs", "get") in secured
    assert ("/v1/whatsapp-api/messages/text", "post") in secured
    assert ("/v1/campaigns", "post") in secured
    open_ = {("/healthz", "get"), ("/readyz", "get"), ("/v1/webhooks/waapi", "post")}
    assert not open_ & secured  # the webhook is signed, the probes are open


def test_the_services_own_endpoints_refuse_in_one_shape_the_mirrors_in_the_gateways(
    url: str,
) -> None:
    """``{"success": false, "error": "..."}`` for every refusal of the service's own
    endpoints, unknown paths and methods included; the gateway's own shapes on its
    mirrors (a WAAPI client reads them unchanged)."""
    own = [
        (requests.get(url + "/nope", timeout=10), 404, "no such endpoint: GET /nope"),
        (requests.delete(url + "/v1/jobs", timeout=10), 405, "method not allowed: DELETE"),
        (requests.get(url + "/v1/jobs", timeout=10), 401, "Bearer token required"),
        (requests.get(url + "/v1/jobs/nope", headers=BEARER["crm"], timeout=10), 404, "Job"),
        (requests.get(url + "/v1/campaigns", headers=BEARER["crm"], timeout=10), 403, "scope"),
        (post(url, "/v1/messages/bulk", {"jobs": []}), 400, "non-empty list"),
        (requests.post(url + "/v1/webhooks/waapi", data=b"{}", timeout=10), 401, "Signature"),
    ]
    for answer, status, says in own:
        body = answer.json()
        assert answer.status_code == status, (answer.url, body)
        assert set(body) == {"success", "error"} and body["success"] is False, body
        assert says in body["error"], body
    assert "GET" in own[1][0].headers["Allow"]
    mirror = requests.post(url + "/v1/whatsapp-api/messages/text", json={}, timeout=10)
    assert mirror.status_code == 401 and set(mirror.json()) == {"success", "message"}
    refused = post(url, "/v1/whatsapp-api/messages/text", {"to": "+15553330001"})
    assert refused.status_code == 400 and refused.json()["error"].startswith("(#100) ")
    unknown = requests.get(url + "/v1/whatsapp-api/nope", timeout=10)
    assert unknown.status_code == 404 and set(unknown.json()) == {"success", "message"}


# --- what the console stands on ----------------------------------------------------------


def test_me_says_the_tokens_name_scopes_and_numbers(url: str) -> None:
    reader = requests.get(url + "/v1/me", headers=BEARER["reader"], timeout=5).json()["data"]
    assert reader["name"] == "reader" and reader["scopes"] == ["read"]
    assert set(reader["numbers"]) >= {"+15550000001", "+15550000002"}  # any number
    assert "dead" in reader["states"]
    bound = next(t for t in TOKENS if t.get("numbers"))
    mine = requests.get(url + "/v1/me", headers=BEARER[bound["name"]], timeout=5).json()["data"]
    assert mine["numbers"] == bound["numbers"]
    refused = requests.get(url + "/v1/me", timeout=5)
    assert refused.status_code == 401 and refused.json()["success"] is False


def test_jobs_are_found_by_recipient(url: str, dispatcher: Dispatcher) -> None:
    wanted = queued_template(url, "+15554470001")
    queued_template(url, "+15554470002")
    queued_template(url, "+15554470001", idempotencyKey="second")
    answer = requests.get(
        url + "/v1/jobs", params={"to": "+15554470001"}, headers=BEARER["crm"], timeout=5
    ).json()
    assert [j["to"] for j in answer["data"]] == ["+15554470001"] * 2
    assert wanted in {j["id"] for j in answer["data"]}
    assert answer["scanned"] >= 3 and answer["nextCursor"] is None  # read to the end
    bad = requests.get(url + "/v1/jobs", params={"to": "12"}, headers=BEARER["crm"], timeout=5)
    assert bad.status_code == 400 and bad.json()["error"].startswith("(#100) to ")


def test_a_campaign_preview_renders_the_first_rows_and_stores_nothing(url: str) -> None:
    spec = campaign_spec(fromPhoneNos=[FROM]).model_dump(mode="json", by_alias=True)
    rows = ["to,name,awb", "+15554450001,Ada,A1", "+15554450002,,A2", "oops,Bo,A3"]
    rows += [f"+155544510{n:02d},N{n},B{n}" for n in range(8)]
    body = {"campaign": spec, "audienceCsv": "\n".join(rows) + "\n"}
    answer = post(url, "/v1/campaigns/preview", body, token="marketing")
    assert answer.status_code == 200, answer.text
    found = answer.json()["data"]
    assert found["recipients"] == 9
    assert [r["line"] for r in found["refused"]] == [3, 4]
    assert "variable name is empty" in found["refused"][0]["reason"]
    first = found["rows"][0]
    assert (first["line"], first["to"], first["fromPhoneNo"]) == (2, "+15554450001", FROM)
    parameters = first["body"]["components"][0]["parameters"]
    assert [p["text"] for p in parameters] == ["Ada", "A1"]
    assert len(found["rows"]) == 5
    listed = requests.get(url + "/v1/campaigns", headers=BEARER["marketing"], timeout=5)
    assert all(c["name"] != spec["name"] or c["recipients"] != 9 for c in listed.json()["data"])
    no_scope = post(url, "/v1/campaigns/preview", body, token="crm")
    assert no_scope.status_code == 403
    unnamed = {**body, "campaign": {**spec, "name": ""}}
    bad = post(url, "/v1/campaigns/preview", unnamed, token="ops")
    assert bad.status_code == 400 and "campaign.name" in bad.json()["error"]


def test_the_console_is_served_from_the_package_with_nothing_from_elsewhere(url: str) -> None:
    page = requests.get(url + "/console", timeout=5)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assets = re.findall(r'(?:src|href)="([^"#]+)"', page.text)
    assert sorted(assets) == ["/console/console.css", "/console/console.js"]
    for asset in assets:
        fetched = requests.get(url + asset, timeout=5)
        assert fetched.status_code == 200
        # No address of another host (the SVG namespace is a name, never fetched).
        assert re.findall(r"https?://(?!www\.w3\.org/2000/svg)", fetched.text) == []
    missing = requests.get(url + "/console/nope.js", timeout=5)
    assert missing.status_code == 404 and missing.json()["success"] is False


def test_events_say_what_just_happened_and_read_on_from_the_last(
    url: str, dispatcher: Dispatcher
) -> None:
    job_id = queued_template(url, "+15554480001")
    wait_until(lambda: dispatcher.job(job_id).state in ("sent", "delivered", "read"))

    def events(token: str = "crm", **params: Any) -> requests.Response:
        return requests.get(url + "/v1/events", params=params, headers=BEARER[token], timeout=5)

    newest = events(limit=200)
    listed = newest.json()["data"]
    mine = [e for e in listed if e["job"] == job_id]
    assert {"queued", "sending", "sent"} <= {e["state"] for e in mine}
    assert all(e["number"] == FROM and e["at"].endswith("+00:00") for e in mine)
    last = newest.json()["last"]
    assert last == listed[-1]["id"]
    later = queued_template(url, "+15554480002")
    wait_until(lambda: dispatcher.job(later).state in ("sent", "delivered", "read"))
    since = events(after=last)
    assert {e["job"] for e in since.json()["data"] if e["job"]} >= {later}

    # Only what came after: the first job's webhooks (delivered, read) may be among it.
    def order(event_id: str) -> tuple[int, ...]:
        return tuple(int(part) for part in event_id.split("-"))

    assert all(order(e["id"]) > order(last) for e in since.json()["data"])
    bound = next(t for t in TOKENS if t.get("numbers") and FROM not in t["numbers"])
    theirs = events(bound["name"]).json()["data"]
    assert all(e["number"] in bound["numbers"] for e in theirs)
    bad = events(after="x")
    assert bad.status_code == 400 and "after must be an event id" in bad.json()["error"]
