"""The job envelope: what travels in a queue message and is kept in the ledger.

Versioned (``v``), JSON, in the gateway's own field names, and never carrying
credentials: the worker picks the API key from ``fromPhoneNo``. The ``payload`` is the
gateway body of the message type without ``to``, ``fromPhoneNo``, ``sessionId`` and
``contact``, so the worker rebuilds exactly the request the producer validated.

This is also the contract for other Celery apps, which may publish
``waapi.send(job=<envelope>)`` to a number's queue themselves. The dispatcher's own
single-job messages carry only the id (``waapi.send(job_id=<id>)``): the envelope is
in the job's record, read when the job is claimed.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from dispatcher.gateway import SendRequest, parse_send
from dispatcher.gateway.fields import E164
from dispatcher.gateway.kinds import ContactRequest, parse_contact, template_of
from dispatcher.job.options import JobOptions
from dispatcher.job.queues import Lane

ENVELOPE_VERSION = 1
_ENVELOPE_FIELDS = ("to", "fromPhoneNo", "sessionId", "contact")

JobId = str
JOB_ID_PATTERN = r"^[A-Za-z0-9_.:\-]{1,64}$"
_JOB_ID = re.compile(JOB_ID_PATTERN)


def is_job_id(value: object) -> bool:
    """Whether ``value`` is a job id as an envelope's ``id`` must be (a message may name
    its job by id alone)."""
    return isinstance(value, str) and _JOB_ID.fullmatch(value) is not None


# cloud and qr jobs send messages; contacts jobs write the gateway's contacts
# (PATCH/POST /contacts) through the queue of their key's first number.
Channel = Literal["cloud", "qr", "contacts"]
OPTION_NAMES = tuple(name for name in JobOptions.model_fields if name != "lane")


def _check_utf8(value: object) -> None:
    """Raise UnicodeEncodeError if a string in ``value`` (JSON: keys too) cannot be
    UTF-8. Walked, not serialized: a body is checked for each job a campaign fans out
    and each claim, and most strings are ASCII (2.5x faster than ``json.dumps``)."""
    if isinstance(value, str):
        if not value.isascii():
            value.encode("utf-8")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_utf8(key)
            _check_utf8(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_utf8(item)


class JobEnvelope(JobOptions):
    """A job as it is queued and kept: its options (inherited, same names and rules),
    what it sends, and the lane it was given."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, validate_by_name=True
    )

    v: Literal[1] = 1
    id: str = Field(pattern=JOB_ID_PATTERN)
    channel: Channel
    type: str = Field(min_length=1, max_length=32)
    to: E164
    from_phone_no: E164 | None = None
    session_id: str | None = Field(default=None, max_length=128)
    payload: dict[str, Any] = {}
    contact: dict[str, Any] | None = None
    lane: Lane = "transactional"
    campaign_rate: float | None = Field(default=None, gt=0)  # the campaign's throttle, per s

    @field_validator("payload", "contact")
    @classmethod
    def _utf8(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        """A body travels and is kept as UTF-8 JSON. A message from another app can
        carry a lone surrogate (JSON spells it ``\\ud800``) in the free-form payload,
        which could be neither kept nor sent: refused here with the field's name."""
        try:
            _check_utf8(value)
        except UnicodeEncodeError:
            raise ValueError("must be valid unicode (no lone surrogates)") from None
        return value

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

    def contact_request(self) -> ContactRequest:
        """A contacts job's request: its payload is the gateway's body as given."""
        return parse_contact(self.type, self.payload)

    def template(self) -> tuple[str, str] | None:
        """(name, language) of the template this job sends, alone or in a combined
        send; None for anything else."""
        return template_of(self.channel, self.type, self.payload)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=True)


def envelope_for(
    job_id: str,
    request: SendRequest,
    *,
    channel: Channel,
    message_type: str,
    options: JobOptions,
    lane: Lane,
) -> JobEnvelope:
    """Build the envelope of a validated request; ``lane`` is the options' lane or the
    default of the way in."""
    body = request.to_gateway()
    payload = {k: v for k, v in body.items() if k not in _ENVELOPE_FIELDS}
    return JobEnvelope(
        **{name: getattr(options, name) for name in OPTION_NAMES},
        id=job_id,
        channel=channel,
        type=message_type,
        to=body["to"],
        from_phone_no=body.get("fromPhoneNo"),
        session_id=body.get("sessionId"),
        payload=payload,
        contact=body.get("contact"),
        lane=lane,
    )
