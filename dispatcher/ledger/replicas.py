"""Writes a failover cannot lose: Redis ``WAIT`` before the dispatcher stands on one.

Redis replicates asynchronously: a write the master has answered may not have reached a
replica when the master dies, and the replica the Sentinels promote then never had it. Two
writes matter. An enqueue the producer was told is queued must survive, and a job's claim
must be kept before its message goes to the gateway (were it lost, the job would be queued
again on the new master and sent twice, with nothing to say so). ``WAIT n timeout`` after
either holds the answer until ``n`` replicas have every write made before it, on any
connection: the master's replication offset only grows.

Only replicas that are connected are waited for: after a failover the new master may have
none yet, and waiting the full timeout on every write would stop the service for nothing
(there is no replica a second failover could promote). How many are connected is read
from ``INFO replication`` at most once a second.
"""

from __future__ import annotations

import threading
import time

import redis

from dispatcher.errors import StoreUnavailable
from dispatcher.ledger.connection import store_errors

REFRESH_S = 1.0


class ReplicaConfirm:
    """Callable: returns once the writes made so far are on ``wanted`` replicas (or on
    every connected one, when fewer are connected); StoreUnavailable when they are not
    within ``timeout_ms``."""

    def __init__(self, client: redis.Redis, wanted: int, timeout_ms: int) -> None:
        self._client = client
        self._wanted = wanted
        self._timeout_ms = timeout_ms
        self._lock = threading.Lock()
        self._connected = 0
        self._read_at = -REFRESH_S

    @property
    def enabled(self) -> bool:
        return self._wanted > 0

    def __call__(self) -> None:
        if self._wanted <= 0:
            return
        needed = min(self._wanted, self._connected_replicas())
        if needed == 0:
            return
        with store_errors():
            confirmed = int(self._client.wait(needed, self._timeout_ms))
        if confirmed < needed:
            self._read_at = -REFRESH_S  # read again: a replica may have gone
            raise StoreUnavailable(
                f"redis: {confirmed} of {needed} replicas confirmed the write within "
                f"{self._timeout_ms} ms (REDIS_CONFIRM_REPLICAS); not acknowledged"
            )

    def _connected_replicas(self) -> int:
        now = time.monotonic()
        if now - self._read_at < REFRESH_S:
            return self._connected
        with self._lock:
            if now - self._read_at >= REFRESH_S:
                with store_errors():
                    info = self._client.info("replication")
                self._connected = int(info.get("connected_slaves", 0))
                self._read_at = now
        return self._connected
