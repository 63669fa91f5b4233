"""The beat-driven tick: the pump (due retries and scheduled jobs, lease-expired claims),
recovery by liveness (dead workers' claims and messages, lost messages), the campaigns
(launch due runs, fan out running ones) and the trim of the indexes. Two beats ticking at
once are harmless: each step is an atomic script or idempotent."""

from __future__ import annotations

import logging
import time

from tasks.app import TICK_INTERVAL_S, app
from tasks.worker_process import campaigns_for, worker_for

TICK_BATCH = 1000
log = logging.getLogger("dispatcher.recovery")


@app.task(name="waapi.tick")
def tick() -> int:
    ledger = worker_for(app).ledger
    deadline = time.monotonic() + TICK_INTERVAL_S
    handled = 0
    while True:
        result = ledger.tick(TICK_BATCH)
        handled += result.total
        if result.total < TICK_BATCH or time.monotonic() > deadline:
            break
    recovered = ledger.recover()
    if recovered.total:
        log.warning(
            "recovery: %d dead workers (claims: %d resent, %d held as unknown, %d never sent "
            "and queued again), %d messages returned to their queues, %d lost messages "
            "published again",
            recovered.dead_workers,
            recovered.claims_resent,
            recovered.claims_held,
            recovered.claims_returned,
            recovered.messages_restored,
            recovered.republished,
        )
    campaigns = campaigns_for(app).tick()
    ledger.trim(ledger.settings.from_numbers)
    ledger.note_beat()  # beat and a maintenance consumer are alive (status, metrics)
    return handled + recovered.total + campaigns["queued"]


@app.task(name="waapi.beat_alive")
def beat_alive() -> None:
    worker_for(app).ledger.note_beat()
