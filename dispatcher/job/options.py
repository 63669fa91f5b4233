"""How a job is dispatched, beside what it sends: one model for every way in.

The Python API takes these as keyword arguments (``send_text(..., lane="bulk")``), a job
line and an HTTP body carry them next to the gateway's own fields in camelCase
(``"lane": "bulk", "idempotencyKey": "..."``), the CLI as flags (``--lane``), and the
envelope (``dispatcher.job.envelope``) inherits them, so each option has one name and one
rule wherever it is written. ``priority`` is the former wire name of ``lane``, still read
from job lines and HTTP bodies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from dispatcher.gateway.cloud import TemplatePayload
from dispatcher.gateway.validation import parse
from dispatcher.job.queues import Lane

FORMER_NAMES = {"priority": "lane"}


class JobOptions(BaseModel):
    """The dispatcher's own fields of a job; the rest of a job object is the gateway body.

    ``lane`` None means the default of the way in: transactional for a single send, the
    caller's choice for ``send_many`` (bulk unless said).
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, validate_by_name=True
    )

    lane: Lane | None = None
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=256)
    not_before: AwareDatetime | None = None
    expires_at: AwareDatetime | None = None
    campaign_id: str | None = Field(default=None, max_length=128)
    fallback_template: TemplatePayload | None = None

    @classmethod
    def wire_names(cls) -> frozenset[str]:
        """The options' names in a job object (camelCase, and the former names)."""
        names = {field.alias or name for name, field in cls.model_fields.items()}
        return frozenset(names | FORMER_NAMES.keys())

    @classmethod
    def of(cls, options: JobOptions | None = None, **given: Any) -> JobOptions:
        """``options`` with ``given`` (Python names) laid over it, checked as one; raises
        InvalidRequest naming the option and the rule."""
        if not given:
            return options or NO_OPTIONS
        fields = cls.model_fields
        # By their wire names, so an error names the option as the docs and HTTP do.
        wire = {(fields[k].alias or k) if k in fields else k: v for k, v in given.items()}
        base = options.model_dump(exclude_unset=True, by_alias=True) if options else {}
        return parse(cls, {**base, **wire})

    @classmethod
    def split(cls, item: Mapping[str, Any]) -> tuple[JobOptions, dict[str, Any]]:
        """The options and the rest (the gateway body) of a job object."""
        names = cls.wire_names()
        given = {FORMER_NAMES.get(k, k): v for k, v in item.items() if k in names}
        options = parse(cls, given) if given else NO_OPTIONS
        return options, {k: v for k, v in item.items() if k not in names}


NO_OPTIONS = JobOptions()
