"""Telemetry of worker and beat processes: our log format instead of Celery's (JSON
lines unless on a terminal, scrubbed), and Sentry started when each process starts,
with the Celery integration (task crashes; beat's schedule as cron monitors)."""

from __future__ import annotations

from typing import Any

from celery.signals import beat_init, setup_logging, worker_init
from sentry_sdk.integrations.celery import CeleryIntegration

from dispatcher.telemetry.logs import configure_logging
from dispatcher.telemetry.scrub import scrubber_for
from dispatcher.telemetry.sentry import init_sentry
from tasks.app import app


@setup_logging.connect
def _logs(loglevel: Any = None, **_: Any) -> None:
    # Connected, this signal replaces Celery's logging setup (its own loggers included).
    settings = app.conf.waapi_settings
    configure_logging(
        scrubber_for(settings),
        level=loglevel or settings.log_level,
        log_format=settings.log_format,
    )


@worker_init.connect
def _worker_reports(sender: Any = None, **_: Any) -> None:
    init_sentry(sender.app.conf.waapi_settings, "worker", [CeleryIntegration()])


@beat_init.connect
def _beat_reports(sender: Any = None, **_: Any) -> None:
    init_sentry(
        sender.app.conf.waapi_settings, "beat", [CeleryIntegration(monitor_beat_tasks=True)]
    )
