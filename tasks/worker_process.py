"""One dispatcher Worker (and its Campaigns) per worker process, built on first use from
the app's settings, and the heartbeat that says the worker is alive and which messages
it holds (recovery, ``/readyz``, metrics and the status screen read it)."""

from __future__ import annotations

import threading
from typing import Any

from celery import Celery
from celery.signals import worker_ready, worker_shutdown
from celery.worker import state as worker_state

from dispatcher.campaigns import Campaigns
from dispatcher.engine.heartbeat import heartbeat
from dispatcher.engine.loop import SendLoop
from dispatcher.engine.worker import Worker
from dispatcher.heap import settle_heap
from dispatcher.ledger.connection import connect
from dispatcher.producer.api import Dispatcher

_lock = threading.Lock()
_runtime: tuple[Worker, Campaigns, SendLoop] | None = None
_stop = threading.Event()


def _build(app: Celery) -> tuple[Worker, Campaigns, SendLoop]:
    global _runtime
    if _runtime is None:
        with _lock:
            if _runtime is None:
                settings, threads = app.conf.waapi_settings, app.conf.waapi_concurrency
                client = Worker.connect(settings, threads)
                # A number the gateway pauses stops this process's campaigns using it.
                campaigns = Campaigns(Dispatcher(settings, client))
                worker = Worker.from_settings(
                    settings,
                    threads,
                    client=client,
                    on_number_paused=campaigns.pause_for_number,
                )
                _runtime = (worker, campaigns, SendLoop(worker, threads).start())
    return _runtime


def worker_for(app: Celery) -> Worker:
    return _build(app)[0]


def campaigns_for(app: Celery) -> Campaigns:
    return _build(app)[1]


def sends_for(app: Celery) -> SendLoop:
    return _build(app)[2]


def held_tags() -> list[str]:
    """Delivery tags of the messages this process holds: received and not yet acked
    (Celery's own worker state; another thread may change it while we read)."""
    for _ in range(20):
        try:
            requests = [
                *worker_state.requests.values(),
                *worker_state.reserved_requests,
                *worker_state.active_requests,
            ]
        except RuntimeError:  # changed size during iteration
            continue
        return sorted({str(r.message.delivery_tag) for r in requests if r.message is not None})
    raise RuntimeError("could not read the worker's held messages")


@worker_ready.connect
def _start_heartbeat(sender: Any = None, **_: Any) -> None:
    app = sender.app
    worker = worker_for(app)
    worker.serve(app.amqp.queues.consume_from)  # the queues -Q named
    settle_heap()  # start-up is done: its heap is frozen (dispatcher.heap)
    settings = worker.settings
    client = connect(settings, max_connections=2)
    threading.Thread(
        target=heartbeat,
        args=(client, worker.identity, _stop, settings.worker_heartbeat_s),
        kwargs={"held_tags": held_tags, "on_beat": worker.after_heartbeat},
        daemon=True,
        name="waapi-heartbeat",
    ).start()


@worker_shutdown.connect
def _stop_heartbeat(**_: Any) -> None:
    """Celery has finished its tasks (a warm shutdown): the send loop records what it
    has in flight, then the heartbeat stops (the claims it covers are settled)."""
    if _runtime is not None:
        _runtime[2].close()
    _stop.set()
