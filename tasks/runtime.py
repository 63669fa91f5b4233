"""One dispatcher Worker per worker process, built on first use from the app's settings."""

from __future__ import annotations

import threading

from celery import Celery

from dispatcher.worker import Worker

_lock = threading.Lock()
_worker: Worker | None = None


def worker_for(app: Celery) -> Worker:
    global _worker
    if _worker is None:
        with _lock:
            if _worker is None:
                _worker = Worker.from_settings(app.conf.waapi_settings, app.conf.waapi_concurrency)
    return _worker
