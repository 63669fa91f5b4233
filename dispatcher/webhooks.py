"""The gateway's signed webhooks: verified, deduplicated, applied to the ledger.

WAAPI forwards Meta's envelope, signed ``X-Hub-Signature-256: sha256=<hex>`` (HMAC-SHA-256
of the raw body, keyed with the API key's webhook verify token), with ``X-WAAPI-Event``
and a unique ``X-WAAPI-Delivery``. Deliveries repeat and arrive out of order, sometimes
before the send's answer was recorded: statuses only move a job forward, and a status
for a wamid not known yet is parked until it is (see ``lua/status.lua``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from config import Settings, normalize_e164
from dispatcher import keys
from dispatcher.ledger import Ledger
from dispatcher.store import store_errors
from dispatcher.windows import Windows

log = logging.getLogger("dispatcher.webhooks")


@dataclass
class Applied:
    """What one delivery did, for the answer and for tests."""

    statuses: dict[str, int] = field(default_factory=dict)
    inbound: int = 0
    duplicate: bool = False


class WebhookReceiver:
    def __init__(self, settings: Settings, ledger: Ledger) -> None:
        self.settings = settings
        self.ledger = ledger
        self.windows = Windows(ledger.client)
        self._tokens = [
            key.webhook_verify_token.get_secret_value().encode()
            for key in settings.keys
            if key.webhook_verify_token is not None
        ]

    @property
    def configured(self) -> bool:
        return bool(self._tokens)

    def verify(self, body: bytes, signature: str | None) -> bool:
        """True when ``signature`` is the HMAC of ``body`` under one of our keys' tokens."""
        if not signature or not signature.startswith("sha256="):
            return False
        given = signature[len("sha256=") :].strip().lower()
        valid = False
        for token in self._tokens:  # compare with every token: no early exit to time
            expected = hmac.new(token, body, hashlib.sha256).hexdigest()
            valid |= hmac.compare_digest(expected, given)
        return valid

    def claim_delivery(self, delivery_id: str | None) -> bool:
        """False when this delivery id was processed already (a repeat)."""
        if not delivery_id:
            return True
        with store_errors():
            return bool(
                self.ledger.client.set(
                    keys.delivery(delivery_id[:200]), 1, nx=True, ex=self.settings.webhook_dedupe_s
                )
            )

    def forget_delivery(self, delivery_id: str | None) -> None:
        """Processing failed: let the gateway's retry of this delivery through."""
        if delivery_id:
            with store_errors():
                self.ledger.client.delete(keys.delivery(delivery_id[:200]))

    def apply(self, payload: Any) -> Applied:
        applied = Applied()
        for our_number, value in _changes(payload):
            for status in value.get("statuses") or []:
                self._status(our_number, status, applied)
            for message in value.get("messages") or []:
                self._inbound(our_number, message, value, applied)
        return applied

    def _status(self, our_number: str | None, status: dict[str, Any], applied: Applied) -> None:
        wamid, state = status.get("id"), status.get("status")
        if not isinstance(wamid, str) or state not in ("sent", "delivered", "read", "failed"):
            return
        code, message = None, ""
        errors = status.get("errors") or []
        if errors and isinstance(errors[0], dict):
            code = errors[0].get("code")
            details = (errors[0].get("error_data") or {}).get("details")
            message = str(details or errors[0].get("title") or "")
        recipient = None
        if isinstance(status.get("recipient_id"), str):
            try:
                recipient = normalize_e164(status["recipient_id"])
            except ValueError:
                recipient = None
        result, _ = self.ledger.apply_status(
            wamid,
            state,
            int(code) if isinstance(code, int | str) and str(code).isdigit() else None,
            message,
            number=our_number,
            recipient=recipient,
        )
        applied.statuses[result] = applied.statuses.get(result, 0) + 1

    def _inbound(
        self,
        our_number: str | None,
        message: dict[str, Any],
        value: dict[str, Any],
        applied: Applied,
    ) -> None:
        sender = message.get("from")
        if our_number is None or not isinstance(sender, str):
            return
        try:
            customer = normalize_e164(sender)
        except ValueError:
            return
        self.windows.customer_wrote(our_number, customer)
        event = {
            "job": "",
            "state": "inbound",
            "number": our_number,
            "from": customer,
            "wamid": str(message.get("id", "")),
            "type": str(message.get("type", "")),
        }
        interactive = message.get("interactive") or {}
        reply = interactive.get("button_reply") or interactive.get("list_reply")
        if isinstance(reply, dict):
            event["reply_id"] = str(reply.get("id", ""))
            event["reply_title"] = str(reply.get("title", ""))
        text = (message.get("text") or {}).get("body")
        if isinstance(text, str):
            event["text"] = text[:4096]
        context = message.get("context") or {}
        if context.get("id"):
            event["context"] = str(context["id"])
        with store_errors():
            self.ledger.client.xadd(
                keys.EVENTS, cast(Any, event), maxlen=self.settings.events_maxlen, approximate=True
            )
        applied.inbound += 1


def _changes(payload: Any) -> Iterator[tuple[str | None, dict[str, Any]]]:
    if not isinstance(payload, dict):
        return
    for entry in payload.get("entry") or []:
        for change in (entry or {}).get("changes") or []:
            value = (change or {}).get("value")
            if not isinstance(value, dict):
                continue
            metadata = value.get("metadata") or {}
            number = None
            display = str(metadata.get("display_phone_number") or "")
            digits = "".join(ch for ch in display if ch in "0123456789")
            if digits:
                try:
                    number = normalize_e164(digits)
                except ValueError:
                    number = None
            yield number, value


def parse_body(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
