"""Error reports from worker and beat processes: Sentry set up when each one starts,
with the Celery integration (task crashes; beat's schedule as cron monitors)."""

from __future__ import annotations

from typing import Any

from celery.signals import beat_init, worker_init
from sentry_sdk.integrations.celery import CeleryIntegration

from dispatcher.telemetry.sentry import init_sentry


@worker_init.connect
def _worker_reports(sender: Any = None, **_: Any) -> None:
    init_sentry(sender.app.conf.waapi_settings, "worker", [CeleryIntegration()])


@beat_init.connect
def _beat_reports(sender: Any = None, **_: Any) -> None:
    init_sentry(
        sender.app.conf.waapi_settings, "beat", [CeleryIntegration(monitor_beat_tasks=True)]
    )
