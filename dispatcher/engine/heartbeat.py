"""Workers say they are alive, and which Celery messages they hold.

Every worker process heartbeats under its own identity (host, pid and a random part:
a restarted process is a new worker) every ``WORKER_HEARTBEAT_S``: its time in
``waapi:workers`` and, replaced whole, the delivery tags of the messages it holds in
``waapi:holds:<identity>``. Recovery (``lua/recover.lua``) judges by these: a worker
silent for ``WORKER_DEAD_AFTER_S`` is dead and what it held goes back to work, and a
message in kombu's unacked hash that no live worker holds is returned to its queue.
``/readyz``, the metrics and the status screen read the same zset.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable

import redis

from dispatcher.errors import StoreUnavailable
from dispatcher.ledger import schema

log = logging.getLogger("dispatcher.heartbeat")


def worker_identity() -> str:
    """This process's name in the heartbeat: ``host/pid/random``."""
    return f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(3)}"


def beat_once(client: redis.Redis, identity: str, tags: Iterable[str], ttl_s: float) -> None:
    """One heartbeat: alive now, holding exactly ``tags`` (one transaction)."""
    pipe = client.pipeline()
    pipe.zadd(schema.WORKERS, {identity: time.time()})
    pipe.delete(schema.holds(identity))
    tags = list(tags)
    if tags:
        pipe.sadd(schema.holds(identity), *tags)
        pipe.expire(schema.holds(identity), max(1, int(ttl_s)))
    pipe.execute()


def heartbeat(
    client: redis.Redis,
    identity: str,
    stop: threading.Event,
    every_s: float,
    held_tags: Callable[[], Iterable[str]] = tuple,
    on_beat: Callable[[], object] | None = None,
) -> None:
    """Beat every ``every_s`` until ``stop``; ``on_beat`` runs after each beat that
    reached Redis (the worker gives back claims whose answer it lost)."""
    while not stop.is_set():
        try:
            beat_once(client, identity, held_tags(), ttl_s=every_s * 10)
            if on_beat is not None:
                on_beat()
        except (redis.RedisError, StoreUnavailable, RuntimeError) as exc:
            log.warning("heartbeat failed: %s", exc)
        stop.wait(every_s)
