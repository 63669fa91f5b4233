"""``POST /whatsapp-api/messages/send``: one request that upserts the contact and sends.

``payload`` has the same shape as the dedicated endpoint's body without ``to`` and
``fromPhoneNo``; it is checked against that endpoint's model, so a combined send is
refused for exactly the reasons the dedicated one would be.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError, model_validator

from dispatcher.gateway.cloud import (
    AudioPayload,
    ButtonsPayload,
    CloudSend,
    CtaPayload,
    DocumentPayload,
    ImagePayload,
    ListPayload,
    TemplatePayload,
    TextPayload,
    VideoPayload,
)
from dispatcher.gateway.contacts import ContactFields
from dispatcher.gateway.fields import CountryCode
from dispatcher.gateway.validation import problems_of

COMBINED_PAYLOADS: dict[str, type[BaseModel]] = {
    "text": TextPayload,
    "image": ImagePayload,
    "video": VideoPayload,
    "audio": AudioPayload,
    "document": DocumentPayload,
    "template": TemplatePayload,
    "buttons": ButtonsPayload,
    "list": ListPayload,
    "cta": CtaPayload,
}


class CombinedSend(CloudSend):
    """``POST /whatsapp-api/messages/send`` (5. Send Message + Update Contact)."""

    message_type = "send"

    country_code: CountryCode | None = None
    contact: ContactFields | None = None
    type: str
    payload: dict[str, Any]

    @model_validator(mode="before")
    @classmethod
    def _payload_fits_type(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        kind = data.get("type")
        if not isinstance(kind, str) or kind not in COMBINED_PAYLOADS:
            # The gateway echoes the value ("Unsupported type 'x'"); we name the field and
            # the rule only, as everywhere (a value may be personal data).
            raise ValueError(f"type must be one of {', '.join(COMBINED_PAYLOADS)}")
        payload = data.get("payload")
        if not isinstance(payload, dict):
            raise ValueError("payload is required and must be an object")
        try:
            typed = COMBINED_PAYLOADS[kind].model_validate(payload)
        except ValidationError as exc:
            raise ValueError("; ".join(str(p) for p in problems_of(exc, "payload"))) from None
        # Store the payload as the gateway will read it (aliases, unset fields dropped).
        return {
            **data,
            "payload": typed.model_dump(mode="json", by_alias=True, exclude_none=True),
        }
