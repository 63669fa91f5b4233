"""The beat-driven tick: the pump and sweeper (due retries and scheduled jobs, stuck and
lease-expired ones) and the campaigns (launch due runs, fan out running ones). Two beats
ticking at once are harmless: each step is an atomic script or idempotent."""

from __future__ import annotations

import time

from tasks.app import TICK_INTERVAL_S, app
from tasks.runtime import campaigns_for, worker_for

TICK_BATCH = 1000


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
    campaigns = campaigns_for(app).tick()
    ledger.trim(ledger.settings.from_numbers)
    return handled + campaigns["queued"]


@app.task(name="waapi.beat_alive")
def beat_alive() -> None:
    worker_for(app).ledger.note_beat()
