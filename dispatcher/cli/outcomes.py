"""A line per job outcome in the terminal of ``waapi-dispatch up``.

Read from the ledger's events stream (every state change is an entry there), from the
moment ``up`` is ready: whoever experiments sees each job they queue come back as sent,
delivered, read or failed without asking for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

from dispatcher.errors import StoreUnavailable
from dispatcher.ledger.events import EventLog

OUTCOMES = frozenset(
    {"sent", "delivered", "read", "failed", "dead", "unknown", "expired", "cancelled"}
)
LINES_PER_TURN = 20  # a campaign's thousands of outcomes become a count, not a flood


class OutcomeLines:
    """Callable: prints the outcomes recorded since it last ran."""

    def __init__(self, client: redis.Redis, echo: Callable[[str], None]) -> None:
        self._events = EventLog(client)
        self._echo = echo
        try:
            self._last = self._events.newest_id()
        except StoreUnavailable:
            self._last = "0-0"

    def __call__(self) -> None:
        try:
            entries = self._events.after(self._last, 1000)
        except StoreUnavailable:
            return  # Redis restarting: the lines come once it is back
        shown = hidden = 0
        for entry in entries:
            self._last = entry.id
            if entry.state not in OUTCOMES:
                continue
            if shown < LINES_PER_TURN:
                self._echo(_line(entry.fields))
                shown += 1
            else:
                hidden += 1
        if hidden:
            self._echo(f"... and {hidden:,} more outcomes")


def _line(fields: dict[str, str]) -> str:
    at = time.strftime("%H:%M:%S", time.localtime(int(fields.get("at", "0")) / 1000))
    extra = "".join(
        f" {name} {fields[name]}" for name in ("wamid", "status", "code") if fields.get(name)
    )
    campaign = f" campaign {fields['camp']}" if fields.get("camp") else ""
    return f"{at} job {fields['job']} {fields['state']} from {fields['number']}{campaign}{extra}"
