"""Every endpoint through the client against the sandbox, beyond the reference's examples.

Each accepted send is recorded by the sandbox with exactly the body the client sent.
"""

from __future__ import annotations

from typing import Any

import pytest

from dispatcher.errors import BadRequest, Forbidden, NotFound
from dispatcher.gateway import parse_send
from dispatcher.gateway.contacts import ContactFields, UpdateContact, UpsertContact
from tests.support.processes import SandboxProcess

FROM, TO = "+15550000001", "+15551230001"
MEDIA = "https://example.com/file"

CLOUD_BODIES: dict[str, dict[str, Any]] = {
    "text": {"body": "Your code is 123456", "previewUrl": False},
    "template": {
        "name": "order_shipped",
        "language": "en",
        "components": [
            {
                "type": "body",
                "parameters": [{"type": "text", "text": "Sam"}, {"type": "text", "text": "AWB-1"}],
            }
        ],
    },
    "buttons": {"bodyText": "Ready?", "buttons": [{"id": "y", "title": "Yes"}]},
    "list": {
        "bodyText": "Pick a slot",
        "buttonText": "Slots",
        "sections": [
            {"title": "Morning", "rows": [{"id": "m9", "title": "09:00"}]},
            {"title": "Evening", "rows": [{"id": "e6", "title": "18:00", "description": "late"}]},
        ],
    },
    "cta": {"bodyText": "Track it", "buttonText": "Track", "url": "https://example.com/t/1"},
    "flow": {"bodyText": "Book", "flowId": "1234", "flowCta": "Book now", "screen": "START"},
    "image": {"link": MEDIA + ".jpg", "caption": "packed"},
    "video": {"mediaId": "998877"},
    "audio": {"link": MEDIA + ".ogg"},
    "sticker": {"mediaId": "stk1"},
    "document": {"link": MEDIA + ".pdf", "filename": "Invoice.pdf", "caption": "invoice"},
}

QR_BODIES: dict[str, dict[str, Any]] = {
    "text": {"body": "hi"},
    "image": {"link": MEDIA + ".jpg", "caption": "c"},
    "video": {"link": MEDIA + ".mp4"},
    "audio": {"link": MEDIA + ".mp3"},
    "document": {"link": MEDIA + ".pdf", "filename": "a.pdf"},
    "location": {"latitude": 12.97, "longitude": 77.59, "name": "Office", "address": "MG Rd"},
}


@pytest.mark.parametrize("kind", sorted(CLOUD_BODIES))
def test_cloud_send_reaches_the_sandbox_with_the_gateway_body(
    sandbox: SandboxProcess, kind: str
) -> None:
    sandbox.inbound(TO, FROM)
    request = parse_send("cloud", kind, {"to": TO, "fromPhoneNo": FROM, **CLOUD_BODIES[kind]})
    result = sandbox.client().send(request)
    [record] = sandbox.sent()
    assert record["wamid"] == result.message_id
    assert record["body"] == request.to_gateway()
    assert (record["from"], record["to"], record["type"]) == (FROM, TO, kind)


@pytest.mark.parametrize(
    "kind", ["text", "image", "video", "audio", "document", "template", "buttons", "list", "cta"]
)
def test_combined_send_upserts_the_contact_and_sends(sandbox: SandboxProcess, kind: str) -> None:
    sandbox.inbound(TO, FROM)
    body = {
        "to": TO,
        "fromPhoneNo": FROM,
        "contact": {"first_name": "Sam", "tags": ["lead"]},
        "type": kind,
        "payload": CLOUD_BODIES[kind],
    }
    request = parse_send("cloud", "send", body)
    result = sandbox.client().send_combined(request)
    assert result.contact is not None
    assert result.contact.raw["first_name"] == "Sam"
    assert result.contact.phone_number == TO.lstrip("+")
    [record] = sandbox.sent()
    assert record["wamid"] == result.message.message_id
    assert record["type"] == kind


def test_combined_send_with_empty_contact_only_sends(sandbox: SandboxProcess) -> None:
    request = parse_send(
        "cloud",
        "send",
        {
            "to": TO,
            "fromPhoneNo": FROM,
            "contact": {},
            "type": "template",
            "payload": {"name": "hello_world", "language": "en"},
        },
    )
    result = sandbox.client().send(request)  # send() of a combined request returns the message
    assert result.message_id.startswith("wamid.")
    with pytest.raises(NotFound):
        sandbox.client().update_contact(
            UpdateContact(phone_number=TO, updates=ContactFields(first_name="x"))
        )


@pytest.mark.parametrize("kind", sorted(QR_BODIES))
def test_qr_send_by_number_and_by_session(sandbox: SandboxProcess, kind: str) -> None:
    client = sandbox.client()
    by_number = parse_send("qr", kind, {"to": TO, "fromPhoneNo": FROM, **QR_BODIES[kind]})
    by_session = parse_send("qr", kind, {"to": TO, "sessionId": "sess_abc", **QR_BODIES[kind]})
    first, second = client.send(by_number), client.send(by_session)
    assert first.session_id == "sess_sandbox"
    assert second.session_id == "sess_abc"
    records = sandbox.sent()
    assert [(r["channel"], r["session"], r["type"]) for r in records] == [
        ("qr", "sess_sandbox", kind),
        ("qr", "sess_abc", kind),
    ]
    assert records[0]["body"] == by_number.to_gateway()


def test_qr_needs_a_connected_session(sandbox: SandboxProcess) -> None:
    request = parse_send("qr", "text", {"to": TO, "sessionId": "sess_gone", "body": "hi"})
    with pytest.raises(BadRequest, match="No connected WhatsApp QR session"):
        sandbox.client().send(request)
    assert sandbox.sent() == []


def test_qr_sessions_lists_the_vendor_sessions(sandbox: SandboxProcess) -> None:
    sessions = sandbox.client().qr_sessions()
    assert {(s.session_id, s.phone_number, s.status) for s in sessions} == {
        ("sess_abc", "917890000199", "connected"),
        ("sess_sandbox", "15550000001", "connected"),
        ("sess_gone", "15550000002", "disconnected"),
    }


def test_contacts_upsert_then_update_only_touches_given_fields(sandbox: SandboxProcess) -> None:
    client = sandbox.client()
    created = client.upsert_contact(
        UpsertContact(
            phone_number="7890000198", country_code="+91", first_name="Sam", email="s@example.com"
        )
    )
    assert created.phone_number == "917890000198"
    updated = client.update_contact(
        UpdateContact(phone_number="917890000198", updates=ContactFields(tags=("vip",)))
    )
    assert updated.id == created.id
    assert updated.raw["first_name"] == "Sam"
    assert updated.raw["email"] == "s@example.com"
    assert updated.raw["tags"] == ["vip"]


def test_number_not_bound_to_the_key_is_forbidden(sandbox: SandboxProcess) -> None:
    request = parse_send(
        "cloud",
        "template",
        {"to": TO, "fromPhoneNo": "+15550000004", "name": "hello_world", "language": "en"},
    )
    with pytest.raises(Forbidden, match="not bound"):
        sandbox.client().send(request)


def test_template_with_wrong_parameter_count_is_refused(sandbox: SandboxProcess) -> None:
    request = parse_send(
        "cloud",
        "template",
        {"to": TO, "fromPhoneNo": FROM, "name": "order_shipped", "language": "en"},
    )
    with pytest.raises(BadRequest) as caught:
        sandbox.client().send(request)
    assert caught.value.code == 132000


def test_templates_pass_outside_the_window_free_text_does_not(sandbox: SandboxProcess) -> None:
    client = sandbox.client()
    template = parse_send(
        "cloud",
        "template",
        {"to": TO, "fromPhoneNo": FROM, "name": "hello_world", "language": "en"},
    )
    text = parse_send("cloud", "text", {"to": TO, "fromPhoneNo": FROM, "body": "hi"})
    client.send(template)
    with pytest.raises(BadRequest) as caught:
        client.send(text)
    assert caught.value.code == 131047
    sandbox.inbound(TO, FROM)
    client.send(text)
    other_number = parse_send(
        "cloud", "text", {"to": TO, "fromPhoneNo": "+15550000002", "body": "hi"}
    )
    with pytest.raises(BadRequest):  # the window is per (our number, customer)
        client.send(other_number)


def test_key_without_secret_needs_none(sandbox: SandboxProcess) -> None:
    from dispatcher.gateway import WaapiClient

    ping = WaapiClient(sandbox.base_url, "waapi_nosecret", None).ping()
    assert ping.api_key_name == "Key without secret"
