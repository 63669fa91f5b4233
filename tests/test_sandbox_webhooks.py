"""The sandbox posts Meta-shaped webhooks, signed as WAAPI signs them, to a real receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from dispatcher.gateway import parse_send
from dispatcher.sandbox import DEMO_VERIFY_TOKEN
from tests.support.data import DATA
from tests.support.processes import SandboxProcess
from tests.support.receiver import webhook_receiver
from tests.support.waiting import wait_until

FROM, TO = "+15550000001", "+15551230001"


def _hello(sandbox: SandboxProcess, to: str = TO) -> str:
    request = parse_send(
        "cloud",
        "template",
        {"to": to, "fromPhoneNo": FROM, "name": "hello_world", "language": "en"},
    )
    return sandbox.client().send(request).message_id


def _keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_keys(value[0])] if value else []
    return None


def test_statuses_arrive_signed_in_order_in_the_reference_shape(sandbox: SandboxProcess) -> None:
    with webhook_receiver() as receiver:
        sandbox.webhooks(url=receiver.url)
        wamid = _hello(sandbox)
        wait_until(lambda: len(receiver.received) == 3)
        assert receiver.statuses() == [(wamid, "sent"), (wamid, "delivered"), (wamid, "read")]
        delivery_ids = set()
        for delivery in receiver.received:
            expected = hmac.new(DEMO_VERIFY_TOKEN.encode(), delivery.body, hashlib.sha256)
            assert delivery.headers["X-Hub-Signature-256"] == "sha256=" + expected.hexdigest()
            assert delivery.headers["X-WAAPI-Event"] == "messages"
            delivery_ids.add(delivery.headers["X-WAAPI-Delivery"])
        assert len(delivery_ids) == 3
        reference = json.loads((DATA / "webhooks" / "status_delivered.json").read_text())
        assert _keys(receiver.bodies()[1]) == _keys(reference)


def test_duplicates_repeat_the_delivery_id(sandbox: SandboxProcess) -> None:
    with webhook_receiver() as receiver:
        sandbox.webhooks(url=receiver.url, duplicate_rate=1.0, statuses=["sent"])
        wamid = _hello(sandbox)
        wait_until(lambda: len(receiver.received) == 2)
        assert receiver.statuses() == [(wamid, "sent"), (wamid, "sent")]
        first, second = receiver.received
        assert first.headers["X-WAAPI-Delivery"] == second.headers["X-WAAPI-Delivery"]


def test_reorder_shuffles_and_before_response_arrives_before_the_answer(
    sandbox: SandboxProcess,
) -> None:
    with webhook_receiver() as receiver:
        sandbox.webhooks(url=receiver.url, before_response=True)
        wamid = _hello(sandbox)
        # Everything arrived before the send's answer did.
        assert receiver.statuses() == [(wamid, "sent"), (wamid, "delivered"), (wamid, "read")]
    orders = set()
    with webhook_receiver() as receiver:
        sandbox.webhooks(url=receiver.url, before_response=False, reorder=True, step_ms=5)
        wamids = [_hello(sandbox, to=f"+1555123{n:04d}") for n in range(12)]
        wait_until(lambda: len(receiver.received) == 36)
        for wamid in wamids:
            orders.add(tuple(s for w, s in receiver.statuses() if w == wamid))
    assert len(orders) > 1


def test_failed_recipients_get_a_failed_status_with_metas_error(sandbox: SandboxProcess) -> None:
    with webhook_receiver() as receiver:
        sandbox.webhooks(url=receiver.url, failed_recipients=[TO])
        wamid = _hello(sandbox)
        wait_until(lambda: len(receiver.received) == 2)
        assert receiver.statuses() == [(wamid, "sent"), (wamid, "failed")]
        failed = receiver.bodies()[1]["entry"][0]["changes"][0]["value"]["statuses"][0]
        assert failed["errors"][0]["code"] == 131026
        reference = json.loads((DATA / "webhooks" / "status_failed.json").read_text())
        assert _keys(receiver.bodies()[1]) == _keys(reference)


def test_a_refused_delivery_is_retried_under_the_same_id(sandbox: SandboxProcess) -> None:
    with webhook_receiver(statuses=[503, 500]) as receiver:
        sandbox.webhooks(url=receiver.url, statuses=["sent"])
        wamid = _hello(sandbox)
        wait_until(lambda: len(receiver.received) == 1, timeout_s=15)
        assert receiver.statuses() == [(wamid, "sent")]
    assert sandbox.stats()["webhooks_posted"] == 1


def test_inbound_messages_and_button_replies_are_posted(sandbox: SandboxProcess) -> None:
    with webhook_receiver() as receiver:
        sandbox.webhooks(url=receiver.url)
        sandbox.inbound(TO, FROM, text="is it shipped?")
        sandbox.inbound(
            TO, FROM, text=None, buttonId="track", buttonTitle="Track", contextId="wamid.X"
        )
        wait_until(lambda: len(receiver.received) == 2)
        # Two posts, in whichever order they arrived.
        bodies = {
            b["entry"][0]["changes"][0]["value"]["messages"][0]["type"]: b
            for b in receiver.bodies()
        }
        text = bodies["text"]["entry"][0]["changes"][0]["value"]
        button = bodies["interactive"]["entry"][0]["changes"][0]["value"]
        assert text["messages"][0]["text"]["body"] == "is it shipped?"
        assert text["messages"][0]["from"] == TO.lstrip("+")
        assert text["contacts"][0]["wa_id"] == TO.lstrip("+")
        assert button["messages"][0]["interactive"]["button_reply"] == {
            "id": "track",
            "title": "Track",
        }
        assert button["messages"][0]["context"]["id"] == "wamid.X"
        reference = json.loads((DATA / "webhooks" / "incoming_button_reply.json").read_text())
        assert _keys(bodies["interactive"]) == _keys(reference)


def test_status_can_be_emitted_on_demand(sandbox: SandboxProcess) -> None:
    with webhook_receiver() as receiver:
        sandbox.webhooks(url=receiver.url, statuses=[])
        wamid = _hello(sandbox)
        sandbox.control(
            "POST",
            "/_sandbox/status",
            {"wamid": wamid, "status": "failed", "code": 131050, "title": "opted out"},
        )
        wait_until(lambda: len(receiver.received) == 1)
        status = receiver.bodies()[0]["entry"][0]["changes"][0]["value"]["statuses"][0]
        assert (status["id"], status["status"], status["errors"][0]["code"]) == (
            wamid,
            "failed",
            131050,
        )
