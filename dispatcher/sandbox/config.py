"""What the sandbox gateway knows: keys, numbers, templates, QR sessions, and faults.

With no options it knows one demo key bound to two numbers with every permission and
two approved templates; a JSON file (the same shape as :class:`SandboxConfig`) or CLI
flags add more.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from config.phone import normalize_e164

ALL_PERMISSIONS = ("messages.send", "messages.read", "contacts.write", "contacts.read")
ALL_SERVICES: tuple[Literal["cloud", "qr"], ...] = ("cloud", "qr")
DEMO_KEY = "waapi_sandbox"
DEMO_SECRET = "secr_sandbox"
DEMO_VERIFY_TOKEN = "verify_sandbox"
DEMO_NUMBERS = ("+15550000001", "+15550000002")

Number = Annotated[str, AfterValidator(normalize_e164)]  # any phone form, kept as E.164
Share = Annotated[float, Field(ge=0, le=1)]  # a fraction of calls
Millis = Annotated[float, Field(ge=0, le=600_000)]
Count = Annotated[int, Field(ge=0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SandboxKey(_Model):
    key: str = Field(pattern=r"^waapi_\S+$")
    secret: str | None = Field(default=None, pattern=r"^secr_\S+$")
    name: str = "Sandbox"
    vendor_id: str = "6a2a74sandbox"
    numbers: list[Number] = Field(min_length=1)
    permissions: list[str] = list(ALL_PERMISSIONS)
    services: list[Literal["cloud", "qr"]] = list(ALL_SERVICES)
    per_minute: int | None = Field(default=None, gt=0)
    per_hour: int | None = Field(default=None, gt=0)
    webhook_verify_token: str = DEMO_VERIFY_TOKEN
    webhook_url: str | None = None


class SandboxTemplate(_Model):
    """An approved template; ``params`` counts the parameters each component takes."""

    name: str
    language: str = "en"
    params: dict[str, int] = {}
    category: Literal["marketing", "utility", "authentication"] = "utility"


class SandboxQrSession(_Model):
    session_id: str
    phone_number: Number
    session_name: str = "Primary"
    status: Literal["connected", "disconnected"] = "connected"
    vendor_id: str = "6a2a74sandbox"


class Faults(_Model):
    """Faults injected on gateway API calls (never on ``/_sandbox``); rates are 0..1.

    ``rate_lost_response``: the request is processed (a send counts as sent) and then
    the connection is reset instead of answered, the worst case for at-most-once.
    ``hang_s`` is how long a ``rate_timeout`` request hangs before its connection drops.
    ``burst_429``/``burst_5xx`` answer the next N calls with that status.
    ``recipient_errors`` makes sends to a recipient fail with a Meta code.
    """

    latency_ms: Millis = 0.0
    latency_jitter_ms: Millis = 0.0
    rate_5xx: Share = 0.0
    rate_429: Share = 0.0
    rate_reset: Share = 0.0
    rate_timeout: Share = 0.0
    rate_lost_response: Share = 0.0
    retry_after_s: float = Field(default=1.0, ge=0, le=86_400)
    hang_s: float = Field(default=60.0, ge=0, le=3_600)
    burst_429: Count = 0
    burst_5xx: Count = 0
    recipient_errors: dict[Number, int] = {}


class Webhooks(_Model):
    """How the sandbox posts Meta-shaped webhooks after accepted sends."""

    statuses: list[Literal["sent", "delivered", "read"]] = ["sent", "delivered", "read"]
    step_ms: Millis = 20.0
    duplicate_rate: Share = 0.0
    reorder: bool = False
    before_response: bool = False
    failed_recipients: list[Number] = []
    max_attempts: int = Field(default=5, ge=1, le=20)


class SandboxConfig(_Model):
    keys: list[SandboxKey] = Field(min_length=1)
    templates: list[SandboxTemplate] = []
    qr_sessions: list[SandboxQrSession] = []
    faults: Faults = Faults()
    webhooks: Webhooks = Webhooks()
    enforce_window: bool = True
    window_s: float = Field(default=86_400.0, gt=0)
    # Meta's messaging limit, per business (the numbers of one vendor): unique recipients
    # outside a customer-service window in a moving 24 hours. Over it a send is accepted
    # and then never delivered, as on Meta. None: no limit.
    messaging_tier: int | None = Field(default=None, gt=0)
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
