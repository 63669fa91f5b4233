"""The Celery app and its settings (why each holds: docs/architecture.md)."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.schedules import crontab

from config import Settings, load_settings
from dispatcher.job.queues import MAINTENANCE_QUEUE

TICK_INTERVAL_S = 1.0


def _broker(settings: Settings) -> tuple[str, dict[str, Any]]:
    """The broker URL and what its transport needs beside it: one Redis, or the master a
    Sentinel group names (kombu's Sentinel transport asks them, as the ledger does)."""
    group = settings.sentinel
    if group is None:
        return settings.redis_url, {}
    return group.kombu_url(), group.kombu_options()


def _celery_config(settings: Settings, concurrency: int) -> dict[str, Any]:
    broker_url, sentinel_options = _broker(settings)
    return {
        "broker_url": broker_url,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            **sentinel_options,
            # Well above any wait: a delay never rides on a Celery countdown here.
            "visibility_timeout": settings.broker_visibility_timeout_s,
            "max_connections": 2 * concurrency + 16,
            # One Redis list per queue: priorities would multiply BRPOP's keys.
            "priority_steps": [0],
            # Messages are JSON text, not base64 (smaller; the ledger scripts write them).
            "body_encoding": "utf-8",
            "socket_timeout": 30,
            "socket_connect_timeout": 5,
            "health_check_interval": 25,
            "unacked_restore_interval": 10,
            "unacked_restore_throttle": 1,
        },
        "broker_pool_limit": concurrency + 8,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_ignore_result": True,
        "result_backend": None,
        "worker_send_task_events": False,
        "task_send_sent_event": False,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_default_queue": MAINTENANCE_QUEUE,
        "task_create_missing_queues": True,
        "worker_disable_rate_limits": True,
        "worker_hijack_root_logger": False,
        "timezone": "UTC",
        # One beat sends at a time; others stand by (tasks/beat.py).
        "beat_scheduler": "tasks.beat:LeaderScheduler",
        "beat_schedule": {
            "waapi-tick": {
                "task": "waapi.tick",
                "schedule": TICK_INTERVAL_S,
                "options": {"queue": MAINTENANCE_QUEUE, "expires": 10},
            },
            # Once a minute: proves beat and a maintenance consumer alive (metrics, status)
            # and is what Sentry Crons can monitor (its floor is one minute).
            "waapi-beat-alive": {
                "task": "waapi.beat_alive",
                "schedule": crontab(),
                "options": {"queue": MAINTENANCE_QUEUE, "expires": 50},
            },
        },
    }


def create_app(settings: Settings) -> Celery:
    concurrency = int(os.environ.get("WAAPI_WORKER_THREADS", settings.worker_concurrency))
    app = Celery("waapi", set_as_current=False)
    app.conf.update(_celery_config(settings, concurrency))
    app.conf.waapi_settings = settings
    app.conf.waapi_concurrency = concurrency
    app.conf.include = ["tasks.send", "tasks.maintenance"]
    return app


app = create_app(load_settings())
