"""Typed results of successful gateway calls. Each keeps the raw ``data`` it came from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dispatcher.errors import UnexpectedResponse


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class SendResult:
    """An accepted send: ``message_id`` is the wamid (Cloud) or the QR message id."""

    message_id: str
    status: str | None = None
    to: str | None = None
    type: str | None = None
    session_id: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_data(cls, data: Any) -> SendResult:
        if not isinstance(data, Mapping) or not data.get("messageId"):
            raise UnexpectedResponse("2xx answer without data.messageId", body=data)
        return cls(
            message_id=str(data["messageId"]),
            status=_str_or_none(data.get("status")),
            to=_str_or_none(data.get("to")),
            type=_str_or_none(data.get("type")),
            session_id=_str_or_none(data.get("sessionId")),
            raw=dict(data),
        )


@dataclass(frozen=True, slots=True)
class Contact:
    """A contact as the gateway stores it (``_id``, ``phoneNumber`` and its fields)."""

    id: str | None
    phone_number: str | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_data(cls, data: Any) -> Contact:
        if not isinstance(data, Mapping):
            raise UnexpectedResponse("2xx answer without a contact object", body=data)
        return cls(
            id=_str_or_none(data.get("_id")),
            phone_number=_str_or_none(data.get("phoneNumber")),
            raw=dict(data),
        )


@dataclass(frozen=True, slots=True)
class CombinedResult:
    """The combined send: the upserted contact (None when skipped) and the message."""

    contact: Contact | None
    message: SendResult

    @classmethod
    def from_data(cls, data: Any) -> CombinedResult:
        if not isinstance(data, Mapping):
            raise UnexpectedResponse("2xx answer without data", body=data)
        contact = data.get("contact")
        return cls(
            contact=Contact.from_data(contact) if contact else None,
            message=SendResult.from_data(data.get("message")),
        )


@dataclass(frozen=True, slots=True)
class Ping:
    vendor_id: str
    api_key_name: str


@dataclass(frozen=True, slots=True)
class QrSession:
    session_id: str
    session_name: str | None
    phone_number: str | None
    status: str | None

    @classmethod
    def from_data(cls, data: Any) -> QrSession:
        if not isinstance(data, Mapping) or not data.get("sessionId"):
            raise UnexpectedResponse("QR session without sessionId", body=data)
        return cls(
            session_id=str(data["sessionId"]),
            session_name=_str_or_none(data.get("sessionName")),
            phone_number=_str_or_none(data.get("phoneNumber")),
            status=_str_or_none(data.get("status")),
        )
