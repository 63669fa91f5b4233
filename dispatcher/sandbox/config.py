"""What the sandbox gateway knows: keys, numbers, templates, QR sessions, and faults.

With no options it knows one demo key bound to two numbers with every permission and
two approved templates; a JSON file (the same shape as :class:`SandboxConfig`) or CLI
flags add more.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from config.phone import normalize_e164

ALL_PERMISSIONS = ("messages.send", "messages.read", "contacts.write", "contacts.read")
ALL_SERVICES: tuple[Literal["cloud", "qr"], ...] = ("cloud", "qr")
DEMO_KEY = "waapi_sandbox"
DEMO_SECRET = "secr_sandbox"
DEMO_VERIFY_TOKEN = "verify_sandbox"
DEMO_NUMBERS = ("+15550000001", "+15550000002")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SandboxKey(_Model):
    key: str = Field(pattern=r"^waapi_\S+$")
    secret: str | None = Field(default=None, pattern=r"^secr_\S+$")
    name: str = "Sandbox"
    vendor_id: str = "6a2a74sandbox"
    numbers: list[str] = Field(min_length=1)
    permissions: list[str] = list(ALL_PERMISSIONS)
    services: list[Literal["cloud", "qr"]] = list(ALL_SERVICES)
    per_minute: int | None = Field(default=None, gt=0)
    per_hour: int | None = Field(default=None, gt=0)
    webhook_verify_token: str = DEMO_VERIFY_TOKEN
    webhook_url: str | None = None

    @field_validator("numbers")
    @classmethod
    def _e164(cls, value: list[str]) -> list[str]:
        return [normalize_e164(n) for n in value]


class SandboxTemplate(_Model):
    """An approved template; ``params`` counts the parameters each component takes."""

    name: str
    language: str = "en"
    params: dict[str, int] = {}
    category: Literal["marketing", "utility", "authentication"] = "utility"


class SandboxQrSession(_Model):
    session_id: str
    phone_number: str
    session_name: str = "Primary"
    status: Literal["connected", "disconnected"] = "connected"
    vendor_id: str = "6a2a74sandbox"

    @field_validator("phone_number")
    @classmethod
    def _e164(cls, value: str) -> str:
        return normalize_e164(value)


class Faults(_Model):
    """Faults injected on gateway API calls (never on ``/_sandbox``); rates are 0..1.

    ``rate_lost_response``: the request is processed (a send counts as sent) and then
    the connection is reset instead of answered, the worst case for at-most-once.
    ``hang_s`` is how long a ``rate_timeout`` request hangs before its connection drops.
    ``burst_429``/``burst_5xx`` answer the next N calls with that status.
    ``recipient_errors`` makes sends to a recipient fail with a Meta code.
    """

    latency_ms: float = Field(default=0.0, ge=0, le=600_000)
    latency_jitter_ms: float = Field(default=0.0, ge=0, le=600_000)
    rate_5xx: float = Field(default=0.0, ge=0, le=1)
    rate_429: float = Field(default=0.0, ge=0, le=1)
    rate_reset: float = Field(default=0.0, ge=0, le=1)
    rate_timeout: float = Field(default=0.0, ge=0, le=1)
    rate_lost_response: float = Field(default=0.0, ge=0, le=1)
    retry_after_s: float = Field(default=1.0, ge=0, le=86_400)
    hang_s: float = Field(default=60.0, ge=0, le=3_600)
    burst_429: int = Field(default=0, ge=0)
    burst_5xx: int = Field(default=0, ge=0)
    recipient_errors: dict[str, int] = {}

    @field_validator("recipient_errors")
    @classmethod
    def _e164_keys(cls, value: dict[str, int]) -> dict[str, int]:
        return {normalize_e164(number): code for number, code in value.items()}


class Webhooks(_Model):
    """How the sandbox posts Meta-shaped webhooks after accepted sends."""

    statuses: list[Literal["sent", "delivered", "read"]] = ["sent", "delivered", "read"]
    step_ms: float = Field(default=20.0, ge=0, le=600_000)
    duplicate_rate: float = Field(default=0.0, ge=0, le=1)
    reorder: bool = False
    before_response: bool = False
    failed_recipients: list[str] = []
    max_attempts: int = Field(default=5, ge=1, le=20)

    @field_validator("failed_recipients")
    @classmethod
    def _e164(cls, value: list[str]) -> list[str]:
        return [normalize_e164(n) for n in value]


class SandboxConfig(_Model):
    keys: list[SandboxKey] = Field(min_length=1)
    templates: list[SandboxTemplate] = []
    qr_sessions: list[SandboxQrSession] = []
    faults: Faults = Faults()
    webhooks: Webhooks = Webhooks()
    enforce_window: bool = True
    window_s: float = Field(default=86_400.0, gt=0)
    seed: int | None = None

    @classmethod
    def demo(cls) -> SandboxConfig:
        """The configuration the sandbox starts with when given none."""
        return cls(
            keys=[SandboxKey(key=DEMO_KEY, secret=DEMO_SECRET, numbers=list(DEMO_NUMBERS))],
            templates=[
                SandboxTemplate(name="hello_world", language="en"),
                SandboxTemplate(name="order_shipped", language="en", params={"body": 2}),
            ],
            qr_sessions=[SandboxQrSession(session_id="sess_sandbox", phone_number=DEMO_NUMBERS[0])],
        )

    @classmethod
    def from_file(cls, path: Path) -> SandboxConfig:
        return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))
