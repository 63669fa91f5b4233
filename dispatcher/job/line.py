"""One job as producers outside Python write it: a send-many line, an HTTP bulk item.

The gateway's own body plus a few dispatcher fields::

    {"type": "template", "to": "...", "fromPhoneNo": "...", "name": "...", ...,
     "channel": "cloud", "priority": "bulk", "idempotencyKey": "...",
     "notBefore": "2026-11-27T10:00:00Z", "expiresAt": "...", "campaignId": "...",
     "fallbackTemplate": {"name": "...", "language": "en"}}

The combined send (``"type": "send"``) has a ``type`` of its own in the gateway body; in
a job line it is written ``sendType``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from dispatcher.errors import FieldProblem, InvalidRequest
from dispatcher.gateway.cloud import TemplatePayload
from dispatcher.gateway.validation import parse
from dispatcher.job.queues import Lane

OPTION_FIELDS = (
    "type",
    "channel",
    "priority",
    "idempotencyKey",
    "notBefore",
    "expiresAt",
    "campaignId",
    "fallbackTemplate",
)


class JobOptions(BaseModel):
    """The dispatcher's own fields of a job; the rest of the object is the gateway body."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    channel: Literal["cloud", "qr"] = "cloud"
    priority: Lane | None = None
    idempotency_key: str | None = Field(
        default=None, alias="idempotencyKey", min_length=1, max_length=256
    )
    not_before: AwareDatetime | None = Field(default=None, alias="notBefore")
    expires_at: AwareDatetime | None = Field(default=None, alias="expiresAt")
    campaign_id: str | None = Field(default=None, alias="campaignId", max_length=128)
    fallback_template: TemplatePayload | None = Field(default=None, alias="fallbackTemplate")


_NO_OPTIONS = JobOptions()


@dataclass(frozen=True)
class JobSpec:
    channel: Literal["cloud", "qr"]
    type: str
    body: dict[str, Any]
    options: JobOptions


def parse_job(item: Any) -> JobSpec:
    """Split a job object into options and gateway body; InvalidRequest when malformed."""
    if not isinstance(item, Mapping):
        raise InvalidRequest([FieldProblem("", "a job must be a JSON object")])
    message_type = item.get("type")
    if not isinstance(message_type, str) or not message_type:
        raise InvalidRequest([FieldProblem("type", "is required (text, template, ...)")])
    options, body = split_options({k: v for k, v in item.items() if k != "type"})
    if message_type == "send" and "sendType" in body:
        body["type"] = body.pop("sendType")
    return JobSpec(options.channel, message_type, body, options)


def split_options(item: Mapping[str, Any]) -> tuple[JobOptions, dict[str, Any]]:
    """The dispatcher's options and the gateway body of a job object (no ``type`` key)."""
    given = {k: v for k, v in item.items() if k in OPTION_FIELDS}
    options = parse(JobOptions, given) if given else _NO_OPTIONS
    return options, {k: v for k, v in item.items() if k not in OPTION_FIELDS}
