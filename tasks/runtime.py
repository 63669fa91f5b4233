"""One dispatcher Worker (and its Campaigns) per worker process, built on first use from
the app's settings, and the heartbeat that tells ``/readyz`` the worker is alive."""

from __future__ import annotations

import threading
from typing import Any

from celery import Celery
from celery.signals import worker_ready, worker_shutdown

from dispatcher.campaigns import Campaigns
from dispatcher.heartbeat import heartbeat
from dispatcher.producer import Dispatcher
from dispatcher.store import connect
from dispatcher.worker import Worker

_lock = threading.Lock()
_runtime: tuple[Worker, Campaigns] | None = None
_stop = threading.Event()


def _build(app: Celery) -> tuple[Worker, Campaigns]:
    global _runtime
    if _runtime is None:
        with _lock:
            if _runtime is None:
                worker = Worker.from_settings(app.conf.waapi_settings, app.conf.waapi_concurrency)
                campaigns = Campaigns(Dispatcher(worker.settings, worker.ledger.client))
                worker.on_number_paused = campaigns.pause_for_number
                _runtime = (worker, campaigns)
    return _runtime


def worker_for(app: Celery) -> Worker:
    return _build(app)[0]


def campaigns_for(app: Celery) -> Campaigns:
    return _build(app)[1]


@worker_ready.connect
def _start_heartbeat(sender: Any = None, **_: Any) -> None:
    app = sender.app
    client = connect(app.conf.waapi_settings.redis_url, max_connections=2)
    name = getattr(sender, "hostname", "worker")
    threading.Thread(
        target=heartbeat, args=(client, name, _stop), daemon=True, name="waapi-heartbeat"
    ).start()


@worker_shutdown.connect
def _stop_heartbeat(**_: Any) -> None:
    _stop.set()
