"""Typed results of successful gateway calls. Each keeps the raw ``data`` it came from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Self

from pydantic.alias_generators import to_camel

from dispatcher.errors import UnexpectedResponse


class _Read:
    """A result read from the gateway's ``data`` object: each field as a string (or None)
    from its camelCase key, or from the key ``_keys`` names for it; ``raw`` keeps the whole
    object. Refused (UnexpectedResponse, ``_refusal``) when ``data`` is not an object or
    lacks ``_needs``: a 2xx answer that does not say what the call did."""

    __slots__ = ()
    _needs: ClassVar[str | None] = None
    _refusal: ClassVar[str]
    _keys: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def from_data(cls, data: Any) -> Self:
        needs = cls._needs
        if not isinstance(data, Mapping) or (needs is not None and not data.get(needs)):
            raise UnexpectedResponse(cls._refusal, body=data)
        values: dict[str, Any] = {}
        for name, key in _layout(cls):
            if key is None:
                values[name] = dict(data)
            else:
                value = data.get(key)
                values[name] = None if value is None else str(value)
        return cls(**values)


_LAYOUTS: dict[type[_Read], tuple[tuple[str, str | None], ...]] = {}


def _layout(cls: type[_Read]) -> tuple[tuple[str, str | None], ...]:
    """Each field of a result and the key it is read from (None: ``raw``, the whole
    object); worked out once per class, not on every answer of a busy worker."""
    layout = _LAYOUTS.get(cls)
    if layout is None:
        layout = _LAYOUTS[cls] = tuple(
            (f.name, None if f.name == "raw" else cls._keys.get(f.name, to_camel(f.name)))
            for f in fields(cls)  # type: ignore[arg-type]
        )
    return layout


@dataclass(frozen=True, slots=True)
class SendResult(_Read):
    """An accepted send: ``message_id`` is the wamid (Cloud) or the QR message id."""

    _needs = "messageId"
    _refusal = "2xx answer without data.messageId"

    message_id: str
    status: str | None = None
    to: str | None = None
    type: str | None = None
    session_id: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class Contact(_Read):
    """A contact as the gateway stores it (``_id``, ``phoneNumber`` and its fields)."""

    _refusal = "2xx answer without a contact object"
    _keys = {"id": "_id"}

    id: str | None
    phone_number: str | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)


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
class QrSession(_Read):
    _needs = "sessionId"
    _refusal = "QR session without sessionId"

    session_id: str
    session_name: str | None
    phone_number: str | None
    status: str | None
