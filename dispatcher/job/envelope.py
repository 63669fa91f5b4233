"""The job envelope: what travels in a queue message and is kept in the ledger.

Versioned (``v``), JSON, in the gateway's own field names, and never carrying
credentials: the worker picks the API key from ``fromPhoneNo``. The ``payload`` is the
gateway body of the message type without ``to``, ``fromPhoneNo``, ``sessionId`` and
``contact``, so the worker rebuilds exactly the request the producer validated.

This is also the contract for other Celery apps, which may publish
``waapi.send(job=<envelope>)`` to a number's queue themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from dispatcher.gateway import SendRequest, parse_send
from dispatcher.gateway.cloud import TemplatePayload
from dispatcher.gateway.fields import E164
from dispatcher.job.queues import Lane

ENVELOPE_VERSION = 1
_ENVELOPE_FIELDS = ("to", "fromPhoneNo", "sessionId", "contact")

JobId = str


class JobEnvelope(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, validate_by_name=True
    )

    v: Literal[1] = 1
    id: str = Field(pattern=r"^[A-Za-z0-9_.:\-]{1,64}$")
    channel: Literal["cloud", "qr"]
    type: str = Field(min_length=1, max_length=32)
    to: E164
    from_phone_no: E164 | None = None
    session_id: str | None = Field(default=None, max_length=128)
    payload: dict[str, Any] = {}
    contact: dict[str, Any] | None = None
    lane: Lane = "transactional"
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=256)
    campaign_id: str | None = Field(default=None, max_length=128)
    not_before: AwareDatetime | None = None
    expires_at: AwareDatetime | None = None
    fallback_template: TemplatePayload | None = None
    campaign_rate: float | None = Field(default=None, gt=0)  # the campaign's throttle, per s

    def body(self) -> dict[str, Any]:
        """The gateway request body this job sends."""
        body: dict[str, Any] = {"to": self.to, **self.payload}
        if self.from_phone_no is not None:
            body["fromPhoneNo"] = self.from_phone_no
        if self.session_id is not None:
            body["sessionId"] = self.session_id
        if self.contact is not None:
            body["contact"] = self.contact
        return body

    def request(self) -> SendRequest:
        """The validated gateway request (raises InvalidRequest if the body is wrong)."""
        return parse_send(self.channel, self.type, self.body())

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=True)


def envelope_for(
    job_id: str,
    request: SendRequest,
    *,
    channel: Literal["cloud", "qr"],
    message_type: str,
    lane: Lane = "transactional",
    idempotency_key: str | None = None,
    campaign_id: str | None = None,
    not_before: datetime | None = None,
    expires_at: datetime | None = None,
    fallback_template: TemplatePayload | Mapping[str, Any] | None = None,
) -> JobEnvelope:
    """Build the envelope of a validated request."""
    body = request.to_gateway()
    payload = {k: v for k, v in body.items() if k not in _ENVELOPE_FIELDS}
    if isinstance(fallback_template, Mapping):
        fallback_template = TemplatePayload.model_validate(fallback_template)
    return JobEnvelope(
        id=job_id,
        channel=channel,
        type=message_type,
        to=body["to"],
        from_phone_no=body.get("fromPhoneNo"),
        session_id=body.get("sessionId"),
        payload=payload,
        contact=body.get("contact"),
        lane=lane,
        idempotency_key=idempotency_key,
        campaign_id=campaign_id,
        not_before=not_before,
        expires_at=expires_at,
        fallback_template=fallback_template,
    )
