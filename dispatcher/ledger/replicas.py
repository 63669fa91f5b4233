"""Writes a failover cannot lose: Redis ``WAIT`` before the dispatcher stands on one.

Redis replicates asynchronously: a write the master has answered may not have reached a
replica when the master dies, and the replica the Sentinels promote then never had it. Two
writes matter. An enqueue the producer was told is queued must survive, and a job's claim
must be kept before its message goes to the gateway (were it lost, the job would be queued
again on the new master and sent twice, with nothing to say so). ``WAIT n timeout`` sent
after either, in the same pipeline (WAIT speaks only for its own connection's writes),
holds the answer until ``n`` replicas have it (``Scripts``, ``CONFIRMED``).

A shortfall is never an acknowledgement. It is also how a master that has been replaced
but still runs (a manual ``SENTINEL FAILOVER``, a partition) shows itself: its replica was
promoted and left it, so nothing confirms what it takes. On a shortfall the Sentinels are
asked where the master is now, so that the next try goes there.

``n`` is ``REDIS_CONFIRM_REPLICAS``: 1 by default with Sentinel, so a group needs two
replicas to keep taking writes after a failover leaves one (the shipped compose profile
runs two); 0 with one server, where nothing waits.
"""

from __future__ import annotations

import contextlib
from typing import Any

import redis

from dispatcher.errors import StoreUnavailable


class ReplicaConfirm:
    """How many replicas must have a write, for how long to wait, and what a shortfall
    means (:meth:`check`)."""

    def __init__(self, client: redis.Redis, wanted: int, timeout_ms: int) -> None:
        self._pool: Any = client.connection_pool
        self.wanted = wanted
        self.timeout_ms = timeout_ms

    def check(self, confirmed: Any) -> None:
        """Raise StoreUnavailable unless ``confirmed`` (WAIT's answer) reaches ``wanted``."""
        if isinstance(confirmed, int) and confirmed >= self.wanted:
            return
        self._find_master()
        raise StoreUnavailable(
            f"redis: {confirmed} of {self.wanted} replicas confirmed the write within "
            f"{self.timeout_ms} ms (REDIS_CONFIRM_REPLICAS); not acknowledged"
        )

    def _find_master(self) -> None:
        """With Sentinel: ask where the master is; a pool whose master moved drops its
        idle connections, and those in use when they come back (redis-py)."""
        ask = getattr(self._pool, "get_master_address", None)
        if ask is not None:
            # The Sentinels away too: the next connection asks them again.
            with contextlib.suppress(redis.RedisError):
                ask()
