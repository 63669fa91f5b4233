"""Every Redis key the dispatcher uses, built in one place under one prefix.

The Lua scripts build the same keys from the same prefix (``PREFIX`` is passed to them),
so a change here is a change everywhere.
"""

from __future__ import annotations

PREFIX = "waapi:"

EVENTS = PREFIX + "events"  # stream: one entry per state change, capped
TIMERS = PREFIX + "timers"  # zset job id -> when the sweeper must look at it (ms)
RECENT = PREFIX + "recent"  # zset job id -> created (ms): listing, newest first
STATS = PREFIX + "stats"  # hash of counters (ambiguous sends, republished, ...)
WORKERS = PREFIX + "workers"  # zset worker name -> last seen (ms)


def job(job_id: str) -> str:
    return f"{PREFIX}job:{job_id}"


def idempotency(key: str) -> str:
    return f"{PREFIX}idem:{key}"


def wamid(message_id: str) -> str:
    return f"{PREFIX}wamid:{message_id}"


def recent_for_number(number: str) -> str:
    return f"{PREFIX}recent:{number}"


def rate(name: str) -> str:
    """The GCRA state (theoretical arrival time) of one limit."""
    return f"{PREFIX}rl:{name}"


def cooldown(name: str) -> str:
    return f"{PREFIX}cool:{name}"


def paused(number: str) -> str:
    return f"{PREFIX}paused:{number}"


def parked(number: str) -> str:
    """Jobs waiting for a paused number to be resumed."""
    return f"{PREFIX}parked:{number}"
