"""Producer tokens on every endpoint, and a fuzz of the ingress: no 500, nothing
invalid queued. The HTTP service runs on uvicorn over loopback (no workers: what is
queued stays in the ledger where it can be counted)."""

from __future__ import annotations

import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatcher.gateway import CLOUD_KINDS, QR_KINDS
from dispatcher.job.options import JobOptions
from dispatcher.producer.api import Dispatcher
from tests.strategies import gateway_fields, json_values
from tests.support.data import BEARER
from tests.support.processes import RedisProcess, SandboxProcess
from tests.support.stack import Stack

FROM = "+15550000001"
SEND_PATHS = [f"/v1/whatsapp-api/messages/{k}" for k in CLOUD_KINDS] + [
    f"/v1/whatsapp-qr/messages/{k}" for k in QR_KINDS
]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Dispatcher]]:
    work = Path(tmp_path_factory.mktemp("http-auth"))
    redis_server = RedisProcess.start(work / "redis")
    sandbox = SandboxProcess.start()
    stack = Stack(redis_server, sandbox, work, http_max_body_bytes=65536)
    url = stack.start_serve()
    with stack.dispatcher() as dispatcher:
        yield url, dispatcher
    stack.stop()
    sandbox.stop()
    redis_server.stop()


def call(
    url: str, method: str, path: str, headers: dict[str, str], body: Any = None
) -> requests.Response:
    return requests.request(method, url + path, json=body, headers=headers, timeout=10)


VALID = {"to": "+15553330001", "fromPhoneNo": FROM, "name": "hello_world", "language": "en"}
ENDPOINTS = [
    ("POST", "/v1/whatsapp-api/messages/template", "send", VALID),
    (
        "POST",
        "/v1/whatsapp-qr/messages/text",
        "send",
        {"to": "+15553330001", "fromPhoneNo": FROM, "body": "hi"},
    ),
    ("POST", "/v1/messages/bulk", "send", {"jobs": [{"type": "template", **VALID}]}),
    ("GET", "/v1/jobs", "read", None),
    ("GET", "/v1/jobs/{job}", "read", None),
]


@pytest.mark.parametrize(("method", "path", "scope", "body"), ENDPOINTS)
def test_every_endpoint_refuses_missing_wrong_and_unscoped_tokens(
    service: tuple[str, Dispatcher], method: str, path: str, scope: str, body: Any
) -> None:
    url, dispatcher = service
    job = dispatcher.send_template("+15553339999", FROM, "hello_world", "en")
    path = path.format(job=job)
    before = dispatcher.ledger.client.zcard("waapi:recent")
    for headers, status in (
        ({}, 401),
        ({"Authorization": "Bearer tok_not_a_real_token_at_all"}, 401),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 401),
        ({"Authorization": "Bearer "}, 401),
        (BEARER["reader" if scope == "send" else "sender"], 403),
    ):
        answer = call(url, method, path, headers, body)
        assert answer.status_code == status, (headers, answer.text)
        assert answer.json()["success"] is False
    assert dispatcher.ledger.client.zcard("waapi:recent") == before
    assert call(url, method, path, BEARER["crm"], body).status_code in (200, 202)
    assert call(url, method, path, BEARER["ops"], body).status_code in (200, 202)  # admin


def test_a_token_restricted_to_a_number_cannot_use_another(service: tuple[str, Dispatcher]) -> None:
    url, dispatcher = service
    mine = call(
        url,
        "POST",
        "/v1/whatsapp-api/messages/template",
        BEARER["number2"],
        {**VALID, "fromPhoneNo": "+15550000002"},
    )
    assert mine.status_code == 202
    theirs = call(url, "POST", "/v1/whatsapp-api/messages/template", BEARER["number2"], VALID)
    assert theirs.status_code == 403 and "may not use number" in theirs.json()["message"]
    bulk = call(
        url,
        "POST",
        "/v1/messages/bulk",
        BEARER["number2"],
        {"jobs": [{"type": "template", **VALID}]},
    ).json()["data"]
    assert "may not use number" in bulk[0]["error"]
    other_job = dispatcher.send_template("+15553339998", FROM, "hello_world", "en")
    assert call(url, "GET", f"/v1/jobs/{other_job}", BEARER["number2"]).status_code == 403
    listed = call(url, "GET", "/v1/jobs?limit=100", BEARER["number2"]).json()["data"]
    assert listed and {j["fromPhoneNo"] for j in listed} == {"+15550000002"}
    assert call(url, "GET", f"/v1/jobs?number={FROM}", BEARER["number2"]).status_code == 403


JSON = json_values(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    max_leaves=12,
    key_size=12,
    items=4,
)
FIELDS = gateway_fields("type", "payload", "contact", *JobOptions.wire_names())
BODIES = st.one_of(
    st.dictionaries(FIELDS, JSON, max_size=8),
    st.dictionaries(FIELDS, JSON, max_size=8).map(lambda d: {**VALID, **d}),
    JSON,
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(path=st.sampled_from(SEND_PATHS), body=BODIES)
def test_fuzzed_bodies_never_500_and_refusals_queue_nothing(
    service: tuple[str, Dispatcher], path: str, body: Any
) -> None:
    url, dispatcher = service
    before = dispatcher.ledger.client.zcard("waapi:recent")
    answer = call(url, "POST", path, BEARER["crm"], body)
    assert answer.status_code in (200, 202, 400), answer.text
    after = dispatcher.ledger.client.zcard("waapi:recent")
    if answer.status_code == 400:
        assert after == before
        assert answer.json()["error"].startswith("(#100) ")
    elif answer.status_code == 202:
        job = dispatcher.job(answer.json()["data"]["jobId"])
        assert job is not None and job.state in ("queued", "scheduled")
        assert after == before + 1


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    raw=st.binary(max_size=300) | st.text(alphabet=string.printable, max_size=300).map(str.encode)
)
def test_fuzzed_raw_bytes_are_refused_cleanly(service: tuple[str, Dispatcher], raw: bytes) -> None:
    url, _ = service
    for path in ("/v1/whatsapp-api/messages/text", "/v1/messages/bulk", "/v1/webhooks/waapi"):
        answer = requests.post(
            url + path,
            data=raw,
            headers={**BEARER["crm"], "Content-Type": "application/json"},
            timeout=10,
        )
        assert answer.status_code in (200, 202, 400, 401), answer.text
