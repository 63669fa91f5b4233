"""The client against the sandbox over loopback, with the reference's own examples.

Every request body in the reference is accepted end to end (model, client, sandbox) and
answered in the reference's shape; every documented error response is produced with its
exact status and body, and the client classifies it as the retry table says.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from pydantic import SecretStr

from dispatcher.errors import Disposition, GatewayError
from dispatcher.gateway import CLOUD_KINDS, QR_KINDS, WaapiClient
from dispatcher.gateway.contacts import UpdateContact, UpsertContact
from dispatcher.gateway.validation import parse
from tests.support.data import DATA, KEYS
from tests.support.processes import SandboxProcess

REFERENCE_REQUESTS = json.loads((DATA / "reference_requests.json").read_text())
REFERENCE_ERRORS = json.loads((DATA / "reference_errors.json").read_text())


def _model_for(method: str, path: str) -> type[Any]:
    if path.startswith("/whatsapp-api/messages/"):
        return CLOUD_KINDS[path.rsplit("/", 1)[1]]
    if path.startswith("/whatsapp-qr/messages/"):
        return QR_KINDS[path.rsplit("/", 1)[1]]
    if method == "PATCH" and path == "/contacts":
        return UpdateContact
    raise KeyError(path)


def _call(client: WaapiClient, method: str, path: str, body: Any) -> Any:
    """Call the endpoint the way a user of the client would."""
    if path == "/ping":
        return client.ping()
    if path == "/whatsapp-qr/sessions":
        return client.qr_sessions()
    request = parse(_model_for(method, path), body)
    if path == "/contacts":
        return client.update_contact(request)
    if path.endswith("/send"):
        return client.send_combined(request)
    return client.send(request)


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


@pytest.mark.parametrize("example", REFERENCE_REQUESTS, ids=lambda e: f"{e['method']} {e['path']}")
def test_every_reference_request_is_accepted_in_the_reference_shape(
    sandbox: SandboxProcess, example: dict[str, Any]
) -> None:
    body = example["body"]
    if example["path"].startswith("/whatsapp-api/messages/"):
        sandbox.inbound(body["to"], body["fromPhoneNo"])  # all but templates need the window
    if example["path"] == "/contacts":
        sandbox.client().upsert_contact(_upsert_for(body))  # PATCH updates existing rows

    result = _call(sandbox.client(), example["method"], example["path"], body)
    assert result is not None

    raw = requests.request(
        example["method"],
        sandbox.base_url + example["path"],
        json=body,
        headers=_headers("sandbox"),
        timeout=5,
    )
    if example["path"] == "/whatsapp-qr/sessions":
        assert raw.ok
        assert _shape(raw.json())["data"][0] == _shape(example["response"])["data"][0]
        return
    assert raw.status_code == 200, raw.text
    assert _shape(raw.json()) == _shape(example["response"])


def _upsert_for(body: dict[str, Any]) -> UpsertContact:
    return UpsertContact(phone_number=body["phoneNumber"], country_code=body.get("countryCode"))


def _headers(auth: str) -> dict[str, str]:
    if auth == "none":
        return {}
    if auth == "key_only":
        return {"X-API-Key": KEYS["sandbox"][0]}
    if auth == "wrong_secret":
        return {"X-API-Key": KEYS["sandbox"][0], "X-API-Secret": "secr_wrong"}
    key, secret = KEYS[auth]
    return {"X-API-Key": key, "X-API-Secret": secret}


def _client_for(sandbox: SandboxProcess, auth: str) -> WaapiClient:
    if auth == "none":
        return WaapiClient(sandbox.base_url, "", None)
    if auth == "key_only":
        return WaapiClient(sandbox.base_url, KEYS["sandbox"][0], None)
    if auth == "wrong_secret":
        return WaapiClient(sandbox.base_url, KEYS["sandbox"][0], SecretStr("secr_wrong"))
    return sandbox.client(auth)


@pytest.mark.parametrize("case", REFERENCE_ERRORS, ids=lambda c: c["name"])
def test_every_reference_error_is_produced_and_classified(
    sandbox: SandboxProcess, case: dict[str, Any]
) -> None:
    if "faults" in case:
        sandbox.faults(**case["faults"])
    if case["name"] == "Nothing to update":
        sandbox.client().upsert_contact(_upsert_for(case["body_in"]))
    auth = case.get("auth", "sandbox")

    raw = requests.request(
        case["method"],
        sandbox.base_url + case["path"],
        json=case.get("body_in"),
        headers=_headers(auth),
        timeout=5,
    )
    assert (raw.status_code, raw.json()) == (case["status"], case["body"])

    client = _client_for(sandbox, auth)
    with pytest.raises(GatewayError) as caught:
        if case.get("raw"):  # a body our models refuse: send it as it is
            client._request(case["method"], case["path"], case["body_in"])
        else:
            _call(client, case["method"], case["path"], case.get("body_in"))
    error = caught.value
    assert type(error).__name__ == case["class"]
    assert error.disposition is Disposition(case["disposition"])
    assert error.status == case["status"]
    assert error.code == case.get("code")
    assert error.message == case["body"].get("error", case["body"].get("message"))
    assert error.body == case["body"]
