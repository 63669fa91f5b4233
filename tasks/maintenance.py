"""The beat-driven pump and sweeper: one tick publishes due retries and scheduled jobs
and resolves stuck or lease-expired ones. Two beats ticking at once are harmless: each
tick is one atomic script over due timers."""

from __future__ import annotations

import time

from tasks.app import TICK_INTERVAL_S, app
from tasks.runtime import worker_for

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
            return handled
