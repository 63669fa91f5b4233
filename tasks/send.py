"""Send tasks: stable names other apps may publish to; bodies a few lines long.

``waapi.send(job=<envelope>)`` sends one job (the dispatcher's own messages name it
by id instead: ``waapi.send(job_id=<id>)``, its envelope in the ledger);
``waapi.send_batch(jobs=[...])`` sends jobs of one number concurrently (ids, or
envelopes). Each claims its job in the ledger first, so a message delivered twice
sends once.
"""

from __future__ import annotations

from typing import Any

from celery import Task
from celery.exceptions import Reject

from dispatcher.errors import StoreUnavailable
from tasks.app import app
from tasks.worker_process import sends_for, worker_for


def _unexpected(task: str, given: dict[str, Any]) -> str:
    return f"{task}: unexpected arguments {sorted(given)}; it takes one keyword argument"


@app.task(name="waapi.send", bind=True)
def send(self: Task, job: Any = None, job_id: Any = None, **unexpected: Any) -> str:
    worker = worker_for(app)
    try:
        if unexpected:  # refused and recorded, not a TypeError the broker would drop
            return worker.refuse(job, _unexpected("waapi.send", unexpected))
        queue = (self.request.delivery_info or {}).get("routing_key") or ""
        return sends_for(app).handle(job, queue, job_id)  # and what else waits there
    except StoreUnavailable as exc:  # keep the message: it is delivered again
        raise Reject(str(exc), requeue=True) from exc


@app.task(name="waapi.send_batch", bind=True)
def send_batch(self: Task, jobs: Any = None, **unexpected: Any) -> list[str]:
    try:
        if unexpected:
            return [worker_for(app).refuse(None, _unexpected("waapi.send_batch", unexpected))]
        queue = (self.request.delivery_info or {}).get("routing_key") or ""
        return sends_for(app).handle_batch(jobs, queue)
    except StoreUnavailable as exc:
        raise Reject(str(exc), requeue=True) from exc
