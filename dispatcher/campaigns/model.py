"""What a campaign is: who sends what to whom, when, how fast, and within which hours.

Pure: no Redis here. The schedule arithmetic (the next run of a one-off or cron
campaign, whether a moment is inside the send window) works in the campaign's own time
zone, so 09:00 stays 09:00 across a daylight-saving change.
"""

from __future__ import annotations

import re
from datetime import datetime, time
from typing import Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from config.phone import normalize_e164

VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")  # {{name}}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Schedule(_Model):
    """Once ``at`` a time, or every time the ``cron`` expression matches, in ``timezone``."""

    at: AwareDatetime | None = None
    cron: str | None = None
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone such as Europe/Berlin") from None
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None and not croniter.is_valid(value):
            raise ValueError("must be a cron expression such as '0 9 * * MON'")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if (self.at is None) == (self.cron is None):
            raise ValueError("schedule needs exactly one of at or cron")
        return self

    def first_run(self, now: datetime) -> datetime:
        """When a new campaign first runs: its time (at once if that has passed), or the
        cron's next match."""
        if self.at is not None:
            return self.at
        run = self.next_run(now)
        assert run is not None
        return run

    def next_run(self, after: datetime) -> datetime | None:
        """The first run strictly after ``after`` (None: a one-off already past)."""
        if self.at is not None:
            return self.at if self.at > after else None
        assert self.cron is not None
        local = after.astimezone(ZoneInfo(self.timezone))
        return croniter(self.cron, local).get_next(datetime)


class SendWindow(_Model):
    """Local hours in which sending may happen, e.g. 09:00-20:00."""

    start: time
    end: time

    def contains(self, moment: datetime, timezone: str) -> bool:
        local = moment.astimezone(ZoneInfo(timezone)).time()
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # across midnight


class Message(_Model):
    """The send of every recipient: a kind and the gateway body without ``to`` and
    ``fromPhoneNo``; strings may hold ``{{variable}}`` filled from the audience row."""

    channel: Literal["cloud", "qr"] = "cloud"
    type: str = "template"
    body: dict[str, Any]


class CampaignSpec(_Model):
    name: str = Field(min_length=1, max_length=200)
    numbers: tuple[str, ...] = Field(min_length=1, alias="fromPhoneNos")
    message: Message
    schedule: Schedule
    throttle_per_s: float | None = Field(default=None, gt=0, alias="throttlePerSecond")
    window: SendWindow | None = None
    expires_at: AwareDatetime | None = Field(default=None, alias="expiresAt")
    queue_ahead: int = Field(default=500, ge=10, le=100_000, alias="queueAhead")
    # Meta's pricing category of the message, for the cost estimate before launch (Meta
    # decides it; the status webhooks then say what it was): a template is taken to be
    # marketing unless said, anything else a service message.
    pricing_category: Literal["marketing", "utility", "authentication", "service"] | None = Field(
        default=None, alias="pricingCategory"
    )

    def expected_category(self) -> str:
        if self.pricing_category is not None:
            return self.pricing_category
        return "marketing" if self.message.type == "template" else "service"

    def send_for(self, values: dict[str, Any], number: str) -> dict[str, Any]:
        """The gateway body of one recipient's send: the message rendered with the
        audience row's ``values``, to its ``to``, from ``number`` (KeyError: a variable
        the row lacks)."""
        return {**render(self.message.body, values), "to": values["to"], "fromPhoneNo": number}

    @field_validator("numbers")
    @classmethod
    def _e164(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(normalize_e164(n) for n in value)


def render(value: Any, variables: dict[str, Any]) -> Any:
    """``value`` with every ``{{name}}`` replaced from ``variables`` (KeyError if absent)."""
    if isinstance(value, str):
        return VARIABLE.sub(lambda m: str(variables[m.group(1)]), value)
    if isinstance(value, list):
        return [render(item, variables) for item in value]
    if isinstance(value, dict):
        return {k: render(v, variables) for k, v in value.items()}
    return value
