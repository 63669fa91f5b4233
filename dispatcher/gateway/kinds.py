"""Every message kind the dispatcher can send, by channel and type, with its model.

This table is the single place that maps ``(channel, type)`` to a request model and so
to a gateway endpoint: the producer API, the HTTP ingress, the CLI and the sandbox all
look kinds up here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from dispatcher.errors import FieldProblem, InvalidRequest
from dispatcher.gateway.cloud import CLOUD_SENDS, CloudSend
from dispatcher.gateway.combined import CombinedSend
from dispatcher.gateway.contacts import UpdateContact, UpsertContact
from dispatcher.gateway.qr import (
    QrAudioMessage,
    QrDocumentMessage,
    QrImageMessage,
    QrLocationMessage,
    QrSend,
    QrTextMessage,
    QrVideoMessage,
)
from dispatcher.gateway.validation import parse

Channel = Literal["cloud", "qr"]
CHANNELS: tuple[Channel, ...] = ("cloud", "qr")

SendRequest = CloudSend | QrSend
M = TypeVar("M", CloudSend, QrSend)


def _by_type(*models: type[M]) -> dict[str, type[M]]:
    """Request models by their ``message_type`` (the path's last part)."""
    return {model.message_type: model for model in models}


CLOUD_KINDS: dict[str, type[CloudSend]] = {**CLOUD_SENDS, "send": CombinedSend}

QR_KINDS: dict[str, type[QrSend]] = _by_type(
    QrTextMessage,
    QrImageMessage,
    QrVideoMessage,
    QrAudioMessage,
    QrDocumentMessage,
    QrLocationMessage,
)

KINDS: dict[Channel, dict[str, type[CloudSend]] | dict[str, type[QrSend]]] = {
    "cloud": CLOUD_KINDS,
    "qr": QR_KINDS,
}


# Contact writes queued as jobs (channel "contacts"): PATCH /contacts, POST /contacts.
ContactRequest = UpdateContact | UpsertContact
CONTACT_KINDS: dict[str, type[ContactRequest]] = {"update": UpdateContact, "upsert": UpsertContact}


def parse_contact(kind: str, body: Any) -> ContactRequest:
    """Validate a contact write in the gateway's shape; InvalidRequest when refused."""
    if kind not in CONTACT_KINDS:
        rule = f"must be one of {', '.join(CONTACT_KINDS)} for the contacts channel"
        raise InvalidRequest([FieldProblem("type", rule)])
    return parse(CONTACT_KINDS[kind], body)


def template_of(channel: str, message_type: str, body: Mapping[str, Any]) -> tuple[str, str] | None:
    """(name, language) of the Meta template a gateway-shaped body sends, alone or in a
    combined send; None for any other message. The language may be a code or Meta's
    ``{"code": ...}``; a missing one reads as ``""``."""
    if channel != "cloud":
        return None
    if message_type == "send" and body.get("type") == "template":
        body = body.get("payload") or {}
    elif message_type != "template":
        return None
    language = body.get("language")
    if isinstance(language, Mapping):
        language = language.get("code")
    name = body.get("name")
    return (name, language or "") if isinstance(name, str) else None


def request_model(channel: str, message_type: str) -> type[SendRequest]:
    """The request model for a kind, or InvalidRequest naming what is known."""
    if channel not in KINDS:
        raise InvalidRequest([FieldProblem("channel", f"must be one of {', '.join(CHANNELS)}")])
    kinds = KINDS[channel]
    if message_type not in kinds:
        rule = f"must be one of {', '.join(kinds)} for the {channel} channel"
        raise InvalidRequest([FieldProblem("type", rule)])
    return kinds[message_type]


def parse_send(channel: str, message_type: str, body: Any) -> SendRequest:
    """Validate a gateway-shaped body for a kind; raise InvalidRequest when refused."""
    return parse(request_model(channel, message_type), body)
