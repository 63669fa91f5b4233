"""Writes a failover cannot lose: Redis ``WAIT`` before the dispatcher stands on one.

Redis replicates asynchronously: a write the master has answered may not have reached a
replica when the master dies, and the replica the Sentinels promote then never had it. Two
writes matter. An enqueue the producer was told is queued must survive, and a job's claim
must be kept before its message goes to the gateway (were it lost, the job would be queued
again on the new master and sent twice, with nothing to say so). ``WAIT n timeout`` sent
after either, in the same pipeline (WAIT speaks only for its own connection's writes),
holds the answer until ``n`` replicas have it (``Scripts``, ``CONFIRMED``).

How many: with Sentinel, every replica the Sentinels see in sync with the master (not
down, link up: the replicas they may promote), and never fewer than
``REDIS_CONFIRM_REPLICAS`` (1 by default with Sentinel; 0 with one server, where
nothing waits). "Any one replica" is not enough: a manual ``SENTINEL FAILOVER`` (or a
partition) promotes one replica while the old master keeps running, and for a second or
two its other replica still follows it and confirms writes that vanish when it, too, is
moved to the new master (seen in the failover tests: claims confirmed so, lost, and the
jobs sent again). The promoted replica stays on the Sentinels' list of the old master's
replicas until the failover ends, so waiting for all of them refuses those writes
instead. Kafka's ``acks=all`` over its in-sync replicas is the same rule. A replica that
dies counts until the Sentinels mark it down (``down-after-milliseconds``, 5 s in the
shipped config): writes are refused meanwhile, never acknowledged unsafely.

A shortfall is never an acknowledgement. It is also how a replaced master shows itself:
nothing confirms what it takes. On a shortfall the Sentinels are asked where the master
is now, so that the next try goes there.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import weakref
from typing import Any

import redis

from dispatcher.errors import StoreUnavailable

# How often the Sentinels are asked how many replicas are in sync (seconds). The count
# changes at a failover, and the promoted replica stays counted throughout it.
IN_SYNC_REFRESH_S = 1.0


class ReplicaConfirm:
    """How many replicas must have a write (:meth:`needed`), for how long to wait, and
    what a shortfall means (:meth:`check`)."""

    def __init__(self, client: redis.Redis, wanted: int, timeout_ms: int) -> None:
        self._pool: Any = client.connection_pool
        self.wanted = wanted  # the floor, REDIS_CONFIRM_REPLICAS
        self.timeout_ms = timeout_ms
        self._in_sync = 0
        self._watcher_pid = 0  # the process whose thread keeps _in_sync fresh
        self._lock = threading.Lock()

    def needed(self) -> int:
        """Replicas a write waits for now: the Sentinels' in-sync replicas, at least
        ``wanted``. Kept fresh by a thread of this process, asked at first use (a
        forked worker starts its own)."""
        if self.wanted > 0 and getattr(self._pool, "sentinel_manager", None) is not None:
            if self._watcher_pid != os.getpid():
                self._start_watching()
            return max(self.wanted, self._in_sync)
        return self.wanted

    def check(self, confirmed: Any, needed: int) -> None:
        """Raise StoreUnavailable unless ``confirmed`` (WAIT's answer) reaches ``needed``."""
        if isinstance(confirmed, int) and confirmed >= needed:
            return
        self._find_master()
        raise StoreUnavailable(
            f"redis: {confirmed} of {needed} replicas confirmed the write within "
            f"{self.timeout_ms} ms (REDIS_CONFIRM_REPLICAS: at least {self.wanted}, and "
            "every replica in sync); not acknowledged"
        )

    def _start_watching(self) -> None:
        with self._lock:
            if self._watcher_pid == os.getpid():
                return
            self._in_sync = self._count_in_sync()  # the first answer before any write
            watched = weakref.ref(self)  # the thread ends with its ReplicaConfirm
            threading.Thread(
                target=_watch, args=(watched,), name="replicas-in-sync", daemon=True
            ).start()
            self._watcher_pid = os.getpid()

    def _count_in_sync(self) -> int:
        """The most in-sync replicas any Sentinel reports (one that has not yet heard of
        a failover still lists the promoted replica; taking the most keeps it counted).
        The last count when none answers."""
        manager = self._pool.sentinel_manager
        counts = []
        for sentinel in manager.sentinels:
            with contextlib.suppress(redis.RedisError):
                replicas = sentinel.sentinel_slaves(self._pool.service_name)
                counts.append(sum(_in_sync(replica) for replica in replicas))
        return max(counts) if counts else self._in_sync

    def _find_master(self) -> None:
        """With Sentinel: ask where the master is; a pool whose master moved drops its
        idle connections, and those in use when they come back (redis-py)."""
        ask = getattr(self._pool, "get_master_address", None)
        if ask is not None:
            # The Sentinels away too: the next connection asks them again.
            with contextlib.suppress(redis.RedisError):
                ask()


def _watch(watched: weakref.ref[ReplicaConfirm]) -> None:
    while True:
        time.sleep(IN_SYNC_REFRESH_S)
        confirm = watched()
        if confirm is None:
            return
        confirm._in_sync = confirm._count_in_sync()
        del confirm


def _in_sync(replica: dict[str, Any]) -> bool:
    """A replica the Sentinels could promote: not down, its link to the master up.
    (``disconnected`` alone is not enough to drop it: a Sentinel's own link blinks while
    the failover reconfigures the promoted replica.)"""
    return (
        not replica.get("is_sdown")
        and not replica.get("is_odown")
        and replica.get("master-link-status") == "ok"
    )
