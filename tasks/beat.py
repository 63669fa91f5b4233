"""Beat on several hosts, one sending at a time: a leader lock in Redis.

Every beat process runs the schedule, but only the one holding ``waapi:beat:leader``
sends its tasks; the others stand by, hot. The leader renews the lock on every scheduler
tick (at least once a second); a standby tries to take it as often, and does once the
leader has been silent for ``BEAT_LEADER_TTL_S`` (it died, froze, or lost its Redis). A
leader that finds the lock gone or taken stands by at once. Two beats sending for a
moment (a frozen leader waking before its next renewal) are harmless: every step of the
tick is an atomic script or idempotent, so a campaign still launches once.

redis-py's ``Lock`` holds the lock (its token is the beat's ``host:pid``, which
``status`` and the tests read); Celery's own schedulers have no notion of a leader.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from typing import Any

import redis
from celery.beat import PersistentScheduler
from redis.exceptions import LockError

from dispatcher.ledger import schema
from dispatcher.ledger.connection import connect

log = logging.getLogger("dispatcher.beat")

TICK_AT_MOST_S = 1.0  # how often the leader renews, and a standby asks


class LeaderScheduler(PersistentScheduler):  # type: ignore[misc]
    """A PersistentScheduler that sends only while it leads."""

    _lock: Any = None
    _leading = False

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if not self._lead():
            return TICK_AT_MOST_S
        return min(float(super().tick(*args, **kwargs)), TICK_AT_MOST_S)

    def close(self) -> None:
        """A beat that stops cleanly hands the lead over at once, not after the TTL."""
        super().close()
        if self._leading:
            self._leading = False
            # Gone already: a standby takes it when the TTL runs out.
            with contextlib.suppress(LockError, redis.RedisError):
                self._lock.release()

    def _lead(self) -> bool:
        """Take or renew the lead; False while another beat holds it or Redis is away."""
        if self._lock is None:
            settings = self.app.conf.waapi_settings
            client = connect(settings, max_connections=2, timeout_s=2.0)
            self._lock = client.lock(
                schema.BEAT_LEADER, timeout=settings.beat_leader_ttl_s, thread_local=False
            )
        identity = f"{socket.gethostname()}:{os.getpid()}"
        try:
            if self._leading:
                self._lock.reacquire()
            elif self._lock.acquire(blocking=False, token=identity):
                self._leading = True
                log.warning("beat %s leads: it sends the schedule", identity)
        except LockError:
            self._leading = False
            log.warning("beat %s lost the lead (silent too long): standing by", identity)
        except redis.RedisError as exc:
            if self._leading:
                log.warning("beat %s cannot renew its lead (%s): standing by", identity, exc)
            self._leading = False
        return self._leading
