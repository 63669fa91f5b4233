"""Start a process's telemetry in one call: log format and error reports."""

from __future__ import annotations

from sentry_sdk.integrations import Integration

from config import Settings
from dispatcher.telemetry.logs import configure_logging
from dispatcher.telemetry.scrub import scrubber_for
from dispatcher.telemetry.sentry import Component, init_sentry


def start_telemetry(
    settings: Settings,
    component: Component,
    *,
    level: str | int | None = None,
    integrations: list[Integration] | None = None,
) -> None:
    """Logs to stderr (JSON or text, scrubbed) and, with SENTRY_DSN, error reports."""
    configure_logging(
        scrubber_for(settings),
        level=level or settings.log_level,
        log_format=settings.log_format,
    )
    init_sentry(settings, component, integrations)
