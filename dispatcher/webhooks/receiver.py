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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from config import Settings, normalize_e164
from dispatcher.ledger import schema
from dispatcher.ledger.connection import store_errors
from dispatcher.ledger.jobs import Ledger
from dispatcher.ledger.templates import QUALITY_RANK, SENDABLE, Templates
from dispatcher.ledger.windows import Windows
from dispatcher.telemetry.sentry import alert
from dispatcher.webhooks.notification import (
    STATUSES,
    TEMPLATE_QUALITY,
    TEMPLATE_STATUS,
    Envelope,
    Inbound,
    Status,
    Unrecognised,
    Value,
    applicable,
    unrecognised,
)

log = logging.getLogger("dispatcher.webhooks")


@dataclass
class Applied:
    """What one delivery did, for the answer and for tests."""

    statuses: dict[str, int] = field(default_factory=dict)
    inbound: int = 0
    templates: int = 0
    duplicate: bool = False
    unrecognised: list[Unrecognised] = field(default_factory=list)


TemplateListener = Callable[[str, str, str, str], object]


class WebhookReceiver:
    """Applies checked envelopes to the ledger. ``on_template_status(name, language,
    status, reason)`` is told when Meta changes a template's status (the HTTP service
    wires the campaigns' pause and resume to it)."""

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        on_template_status: TemplateListener | None = None,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.windows = Windows(ledger.client)
        self.templates = Templates(ledger.client)
        self.on_template_status = on_template_status
        self._number_by_id = settings.number_by_phone_number_id()
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
                    schema.delivery(delivery_id[:200]),
                    1,
                    nx=True,
                    ex=self.settings.webhook_dedupe_s,
                )
            )

    def forget_delivery(self, delivery_id: str | None) -> None:
        """Processing failed: let the gateway's retry of this delivery through."""
        if delivery_id:
            with store_errors():
                self.ledger.client.delete(schema.delivery(delivery_id[:200]))

    def apply(self, envelope: Envelope) -> Applied:
        """Apply a checked envelope: statuses move jobs, inbound messages open windows;
        what it holds that we do not act on is counted and streamed as unrecognised."""
        applied = Applied()
        for value in applicable(envelope):
            our_number = self._our_number(value)
            for status in value.statuses:
                if status.status in STATUSES:
                    self._status(our_number, status, applied)
            for message in value.messages:
                self._inbound(our_number, message, applied)
        for value in applicable(envelope, TEMPLATE_STATUS):
            self._template_status(value, applied)
        for value in applicable(envelope, TEMPLATE_QUALITY):
            self._template_quality(value, applied)
        applied.unrecognised = unrecognised(envelope)
        if applied.unrecognised:
            self._note_unrecognised(applied.unrecognised)
        return applied

    def _template_status(self, value: Value, applied: Applied) -> None:
        name, language = value.message_template_name, value.message_template_language or ""
        if not name or not value.event:
            return
        template_id = value.message_template_id
        state = self.templates.record(
            name,
            language,
            status=value.event.upper(),
            reason=value.reason,
            template_id=None if template_id is None else str(template_id),
        )
        self._template_event("template_status", state.name, state.language, status=state.status)
        applied.templates += 1
        if state.status in SENDABLE:  # the jobs held for it go now
            self.templates.release_held(name, language)
        if self.on_template_status is not None:
            self.on_template_status(name, language, str(state.status), value.reason or "")

    def _template_quality(self, value: Value, applied: Applied) -> None:
        name, language = value.message_template_name, value.message_template_language or ""
        if not name or not value.new_quality_score:
            return
        new, before = value.new_quality_score.upper(), (value.previous_quality_score or "").upper()
        self.templates.record(name, language, quality=new)
        self._template_event("template_quality", name, language, quality=new, previous=before)
        applied.templates += 1
        if QUALITY_RANK.get(new, 0) < QUALITY_RANK.get(before, 0):
            log.warning("template %s (%s) quality fell from %s to %s", name, language, before, new)
            alert(
                f"template {name} ({language}) quality fell from {before} to {new}",
                fingerprint=["template-quality", name, language],
                level="warning",
                template=name,
                language=language,
            )

    def _template_event(self, state: str, name: str, language: str, **fields: Any) -> None:
        event = {"job": "", "state": state, "template": name, "language": language}
        event.update({k: str(v) for k, v in fields.items() if v})
        self._stream(event)

    def _stream(self, event: dict[str, str]) -> None:
        """One entry on the events stream (capped like the ledger's own)."""
        with store_errors():
            self.ledger.client.xadd(
                schema.EVENTS,
                cast(Any, event),
                maxlen=self.settings.events_maxlen,
                approximate=True,
            )

    def _our_number(self, value: Value) -> str | None:
        """The number a change is for: by Meta's ``phone_number_id`` when it is
        configured (the reference's identifier), else by the display number's digits."""
        metadata = value.metadata
        if metadata is None:
            return None
        if metadata.phone_number_id and metadata.phone_number_id in self._number_by_id:
            return self._number_by_id[metadata.phone_number_id]
        digits = "".join(ch for ch in metadata.display_phone_number or "" if ch in "0123456789")
        if not digits:
            return None
        try:
            return normalize_e164(digits)
        except ValueError:
            return None

    def _status(self, our_number: str | None, status: Status, applied: Applied) -> None:
        code, message = None, ""
        if status.errors:
            first = status.errors[0]
            code = first.code
            details = (first.error_data or {}).get("details")
            message = str(details or first.title or first.message or "")
        recipient = None
        if status.recipient_id is not None:
            try:
                recipient = normalize_e164(status.recipient_id)
            except ValueError:
                recipient = None
        result, _ = self.ledger.apply_status(
            status.id,
            status.status,
            int(code) if code is not None and str(code).isdigit() else None,
            message,
            number=our_number,
            recipient=recipient,
            billing=self._priced(status.billing(), recipient),
        )
        applied.statuses[result] = applied.statuses.get(result, 0) + 1

    def _priced(
        self, billing: dict[str, Any] | None, recipient: str | None
    ) -> dict[str, Any] | None:
        """The billing with PRICES' estimate for it (micro-units, so that Redis adds
        integers), when the message is billable and a price is configured."""
        if not billing or billing.get("billable") is not True or recipient is None:
            return billing
        price = self.settings.price_of(str(billing.get("category")), recipient)
        if price is None:
            return billing
        return {**billing, "price_micros": round(price * 1_000_000)}

    def _inbound(self, our_number: str | None, message: Inbound, applied: Applied) -> None:
        if our_number is None:
            return
        try:
            customer = normalize_e164(message.from_)
        except ValueError:
            return
        self.windows.customer_wrote(our_number, customer)
        event = {
            "job": "",
            "state": "inbound",
            "number": our_number,
            "from": customer,
            "wamid": message.id,
            "type": message.type,
        }
        event.update(_content(message))
        self._stream(event)
        applied.inbound += 1

    def _note_unrecognised(self, found: list[Unrecognised]) -> None:
        """Counted (``waapi_webhook_unrecognised``) and on the stream, never dropped."""
        with store_errors():
            pipe = self.ledger.client.pipeline()
            for item in found:
                fields = {"job": "", "state": "unrecognised", "kind": item.kind}
                fields.update(path=item.path, name=item.name)
                pipe.xadd(
                    schema.EVENTS,
                    cast(Any, fields),
                    maxlen=self.settings.events_maxlen,
                    approximate=True,
                )
                pipe.hincrby(schema.metric("webhooks"), item.kind, 1)
            pipe.execute()
        log.warning(
            "webhook parts not acted on: %s",
            ", ".join(f"{u.kind} {u.name} at {u.path}" for u in found[:10]),
        )


def parse_body(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _content(message: Inbound) -> dict[str, str]:
    """What the customer sent, as flat event fields (each capped at 4,096 characters):
    text, a button or list reply, media (id, mime type, sha256, caption, file name), a
    location, shared contacts (JSON) and the message replied to."""
    out: dict[str, str] = {}
    if message.text is not None and message.text.body is not None:
        out["text"] = message.text.body
    interactive = message.interactive
    reply = interactive and (interactive.button_reply or interactive.list_reply)
    if reply:
        out.update(reply_id=reply.id or "", reply_title=reply.title or "")
    elif message.button is not None:
        out.update(reply_id=message.button.payload or "", reply_title=message.button.text or "")
    media = message.media()
    if media is not None:
        found = {
            "media_id": media.id,
            "mime_type": media.mime_type,
            "sha256": media.sha256,
            "caption": media.caption,
            "filename": media.filename,
        }
        out.update({k: v for k, v in found.items() if v is not None})
    if message.location is not None:
        place = message.location
        for name, value in (
            ("latitude", place.latitude),
            ("longitude", place.longitude),
            ("location_name", place.name),
            ("location_address", place.address),
        ):
            if value is not None:
                out[name] = str(value)
    if message.contacts:
        out["contacts"] = json.dumps(message.contacts, separators=(",", ":"))
    if message.context is not None and message.context.id:
        out["context"] = message.context.id
    return {k: v[:4096] for k, v in out.items()}
