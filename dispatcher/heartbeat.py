"""Workers say they are alive: ``/readyz``, metrics and the status screen read it."""

from __future__ import annotations

import logging
import threading
import time

import redis

from dispatcher import keys

log = logging.getLogger("dispatcher.heartbeat")


def heartbeat(client: redis.Redis, name: str, stop: threading.Event, every_s: float = 5.0) -> None:
    """Say "this worker is alive" every few seconds until ``stop`` (``/readyz`` reads it)."""
    while not stop.is_set():
        try:
            client.zadd(keys.WORKERS, {name: time.time()})
            client.zremrangebyscore(keys.WORKERS, "-inf", time.time() - 3600)
        except redis.RedisError as exc:
            log.warning("heartbeat to Redis failed: %s", exc)
        stop.wait(every_s)
