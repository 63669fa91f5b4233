"""One dispatcher Worker per worker process, built on first use from the app's settings,
and the heartbeat that tells ``/readyz`` the worker is alive."""

from __future__ import annotations

import threading
from typing import Any

from celery import Celery
from celery.signals import worker_ready, worker_shutdown

from dispatcher.campaigns import Campaigns
from dispatcher.producer import Dispatcher
from dispatcher.store import connect
from dispatcher.worker import Worker, heartbeat

_lock = threading.Lock()
_worker: Worker | None = None
_stop = threading.Event()


def worker_for(app: Celery) -> Worker:
    global _worker
    if _worker is None:
        with _lock:
            if _worker is None:
                worker = Worker.from_settings(app.conf.waapi_settings, app.conf.waapi_concurrency)
                campaigns = Campaigns(Dispatcher(worker.settings, worker.ledger.client))
                worker.on_number_paused = campaigns.pause_for_number
                _worker = worker
    return _worker


_campaigns: Campaigns | None = None


def campaigns_for(app: Celery) -> Campaigns:
    global _campaigns
    if _campaigns is None:
        with _lock:
            if _campaigns is None:
                worker = worker_for(app)
                _campaigns = Campaigns(Dispatcher(worker.settings, worker.ledger.client))
    return _campaigns


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
