"""Meta's webhook envelope as the gateway forwards it: checked, typed, and what we do
not handle named rather than dropped.

A signed body is the gateway's word, but its shape is still checked before anything is
applied: a body that is not a valid envelope (``{"entry": "x"}``, a status whose ``id``
is not a string) is refused as a whole with the path and the rule
(``entry[0].changes[0].value.statuses[0].id must be a string``), so a delivery is either
applied or refused, never half of it. Parts that are well formed but that the dispatcher
does not act on (another ``object``, another change ``field``, a status value it does
not know, an unknown key of ``value``) are returned as :class:`Unrecognised`, which the
receiver counts and puts on the events stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dispatcher.gateway.validation import parse

OBJECT = "whatsapp_business_account"
TEMPLATE_STATUS = "message_template_status_update"
TEMPLATE_QUALITY = "message_template_quality_update"
CHANGE_FIELDS = frozenset({"messages", TEMPLATE_STATUS, TEMPLATE_QUALITY})
STATUSES = frozenset({"sent", "delivered", "read", "failed"})
VALUE_KEYS = frozenset({"messaging_product", "metadata", "contacts", "messages", "statuses"})


class _Part(BaseModel):
    """Meta adds fields over time: unknown keys are kept (and reported where they matter)."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)


class StatusError(_Part):
    code: int | str | None = None
    title: str | None = None
    message: str | None = None
    error_data: dict[str, Any] | None = None


class Origin(_Part):
    type: str | None = None


class Conversation(_Part):
    id: str | None = None
    origin: Origin | None = None
    expiration_timestamp: str | int | None = None


class Pricing(_Part):
    """What Meta charges for the message: whether it is billable, its category
    (marketing, utility, authentication, service) and the pricing model."""

    billable: bool | None = None
    pricing_model: str | None = None
    category: str | None = None


class Status(_Part):
    id: str = Field(min_length=1, max_length=512)
    status: str = Field(min_length=1, max_length=64)
    recipient_id: str | None = None
    errors: list[StatusError] = []
    conversation: Conversation | None = None
    pricing: Pricing | None = None

    def billing(self) -> dict[str, Any] | None:
        """The pricing and conversation as the ledger keeps them, or None."""
        if self.pricing is None:
            return None
        conversation = self.conversation
        origin = conversation.origin if conversation else None
        found = {
            "billable": self.pricing.billable,
            "category": self.pricing.category,
            "model": self.pricing.pricing_model,
            "conversation": conversation.id if conversation else None,
            "origin": origin.type if origin else None,
        }
        return {k: v for k, v in found.items() if v is not None}


class Reply(_Part):
    id: str | None = None
    title: str | None = None


class Interactive(_Part):
    button_reply: Reply | None = None
    list_reply: Reply | None = None


class Text(_Part):
    body: str | None = None


class Media(_Part):
    """An incoming image, video, audio, document or sticker: its media id (to download
    from the gateway), type, checksum and what the customer wrote with it."""

    id: str | None = None
    mime_type: str | None = None
    sha256: str | None = None
    caption: str | None = None
    filename: str | None = None


class Location(_Part):
    latitude: float | None = None
    longitude: float | None = None
    name: str | None = None
    address: str | None = None


class Button(_Part):
    """A tap on a template's quick-reply button."""

    text: str | None = None
    payload: str | None = None


class Context(_Part):
    id: str | None = None


class Inbound(_Part):
    from_: str = Field(alias="from", min_length=1, max_length=64)
    id: str = Field(min_length=1, max_length=512)
    type: str = Field(min_length=1, max_length=64)
    text: Text | None = None
    interactive: Interactive | None = None
    button: Button | None = None
    context: Context | None = None
    image: Media | None = None
    video: Media | None = None
    audio: Media | None = None
    document: Media | None = None
    sticker: Media | None = None
    location: Location | None = None
    contacts: list[dict[str, Any]] | None = None  # shared contact cards, kept as sent

    def media(self) -> Media | None:
        """The media the message carries, whichever kind it is."""
        return self.image or self.video or self.audio or self.document or self.sticker


class Metadata(_Part):
    display_phone_number: str | None = None
    phone_number_id: str | None = None


class Value(_Part):
    """A change's value: statuses and messages (field ``messages``), or a template's
    status or quality (fields ``message_template_status_update`` and ``..._quality_...``)."""

    metadata: Metadata | None = None
    statuses: list[Status] = []
    messages: list[Inbound] = []
    contacts: list[dict[str, Any]] = []
    messaging_product: str | None = None
    event: str | None = Field(default=None, max_length=64)
    message_template_id: int | str | None = None
    message_template_name: str | None = Field(default=None, max_length=512)
    message_template_language: str | None = Field(default=None, max_length=32)
    reason: str | None = Field(default=None, max_length=1024)
    previous_quality_score: str | None = Field(default=None, max_length=32)
    new_quality_score: str | None = Field(default=None, max_length=32)


class Change(_Part):
    field: str = Field(min_length=1, max_length=128)
    value: Value


class Entry(_Part):
    id: str | None = None
    changes: list[Change]


class Envelope(_Part):
    object: str = Field(min_length=1, max_length=128)
    entry: list[Entry]


@dataclass(frozen=True)
class Unrecognised:
    """A well-formed part the dispatcher does not act on: its kind (``object``,
    ``field``, ``status``, ``key``), where it was, and its name (short, printable)."""

    kind: str
    path: str
    name: str


def _name(value: str) -> str:
    """A name from the body for logs and the stream: printable and short, never more."""
    return value[:64] if value.isprintable() else "(unprintable)"


def parse_envelope(payload: Any) -> Envelope:
    """The envelope, or InvalidRequest naming each bad path and its rule."""
    return parse(Envelope, payload, prefix="body" if not isinstance(payload, dict) else "")


def unrecognised(envelope: Envelope) -> list[Unrecognised]:
    """Everything in ``envelope`` that the receiver will not act on: an unknown object
    or change field as a whole, else unknown keys of ``value`` and status values."""
    if envelope.object != OBJECT:
        return [Unrecognised("object", "object", _name(envelope.object))]
    found: list[Unrecognised] = []
    for e, entry in enumerate(envelope.entry):
        for c, change in enumerate(entry.changes):
            where = f"entry[{e}].changes[{c}]"
            if change.field not in CHANGE_FIELDS:
                found.append(Unrecognised("field", f"{where}.field", _name(change.field)))
                continue
            if change.field != "messages":
                continue
            for key in change.value.model_extra or {}:
                found.append(Unrecognised("key", f"{where}.value", _name(key)))
            for s, status in enumerate(change.value.statuses):
                if status.status not in STATUSES:
                    path = f"{where}.value.statuses[{s}].status"
                    found.append(Unrecognised("status", path, _name(status.status)))
    return found


def applicable(envelope: Envelope, field: str = "messages") -> list[Value]:
    """The values the receiver applies: changes of ``field`` (messages, or a template's
    status or quality) of a WhatsApp Business account."""
    if envelope.object != OBJECT:
        return []
    changes = (change for entry in envelope.entry for change in entry.changes)
    return [change.value for change in changes if change.field == field]
