"""The error reports a worker makes: for what a person must act on, not for retries."""

from __future__ import annotations

from typing import Protocol

from dispatcher.errors import Forbidden, GatewayError, Unauthorized
from dispatcher.job.envelope import JobEnvelope
from dispatcher.telemetry.sentry import alert


class KeyNames(Protocol):
    def key_name(self, envelope: JobEnvelope) -> str | None: ...


def report_if_it_pages(
    envelope: JobEnvelope, attempt: int, error: GatewayError, state: str, keys: KeyNames
) -> None:
    """The gateway refusing our credentials (401/403), or a job going dead."""
    kind = type(error).__name__
    if isinstance(error, Unauthorized | Forbidden):
        key = keys.key_name(envelope)
        alert(
            f"the gateway refused key {key}: {error.status} {error.message}",
            fingerprint=["gateway-auth", str(key), str(error.status)],
            key=key,
            status=error.status,
        )
    if state == "dead":
        alert(
            f"job dead after {attempt} attempts: {kind} {error.code or error.status}",
            fingerprint=["job-dead", kind, str(error.code or error.status)],
            job=envelope.id,
            number=envelope.from_phone_no,
            lane=envelope.lane,
            code=error.code,
            status=error.status,
        )
