"""Error reports to Sentry: set up once per process, scrubbed, and only for what pages.

Events are sent for what a person must act on: a job that went ``dead`` (retries used
up), the gateway refusing our credentials (401/403), a number the gateway paused (Meta
131048), and crashes (uncaught exceptions in tasks and HTTP handlers). Retries are not
events: they are the dispatcher doing its job, and they show in metrics.

Every event goes through :class:`~dispatcher.telemetry.scrub.Scrubber` in
``before_send`` (and breadcrumbs in ``before_breadcrumb``); local variables and request
bodies are never attached, ``send_default_pii`` stays off.
"""

from __future__ import annotations

import logging
from importlib import metadata
from typing import Any, Literal

import sentry_sdk
from sentry_sdk.integrations import Integration
from sentry_sdk.integrations.logging import LoggingIntegration

from config import Settings
from dispatcher.telemetry.scrub import scrubber_for

log = logging.getLogger("dispatcher.telemetry")

Component = Literal["web", "worker", "beat", "cli"]


def release() -> str:
    try:
        return f"waapi-dispatcher@{metadata.version('waapi-dispatcher')}"
    except metadata.PackageNotFoundError:
        return "waapi-dispatcher@unknown"


def init_sentry(
    settings: Settings, component: Component, integrations: list[Integration] | None = None
) -> bool:
    """Start reporting to ``SENTRY_DSN``, if set; True when it was started. The Celery
    integration comes from ``tasks/`` (``dispatcher`` does not import Celery)."""
    if settings.sentry_dsn is None:
        return False
    scrubber = scrubber_for(settings, keep_numbers=settings.sentry_keep_numbers)

    def before_send(event: Any, hint: Any) -> Any:
        return scrubber(event)

    def before_breadcrumb(crumb: Any, hint: Any) -> Any:
        return scrubber(crumb)

    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        environment=settings.sentry_environment,
        release=settings.sentry_release or release(),
        send_default_pii=False,
        include_local_variables=False,  # frames' locals hold bodies, numbers, clients
        max_request_body_size="never",
        before_send=before_send,
        before_breadcrumb=before_breadcrumb,
        # Log records are breadcrumbs, not events: events are chosen (see alert()).
        integrations=[
            LoggingIntegration(level=logging.INFO, event_level=None),
            *list(integrations or []),
        ],
        traces_sample_rate=0.0,
    )
    sentry_sdk.set_tag("component", component)
    log.info("error reports go to Sentry (%s)", settings.sentry_environment)
    return True


def alert(message: str, *, fingerprint: list[str], level: str = "error", **tags: Any) -> None:
    """One event for a person to act on. ``fingerprint`` groups repeats into one issue
    (say, every dead job with the same Meta code); a no-op when Sentry is not set up."""
    if not sentry_sdk.is_initialized():
        return
    with sentry_sdk.new_scope() as scope:
        scope.fingerprint = fingerprint
        for name, value in tags.items():
            if value is not None:
                scope.set_tag(name, str(value))
        scope.level = level
        sentry_sdk.capture_message(message)
