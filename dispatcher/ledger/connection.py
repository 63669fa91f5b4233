"""The Redis connection: built from settings once, with timeouts set, errors translated.

redis-py 8 defaults ``socket_timeout`` to 5 s; we set both timeouts explicitly, and
``store_errors()`` turns any redis-py exception into StoreUnavailable at the boundary.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis

from dispatcher.errors import StoreUnavailable


def connect(url: str, *, max_connections: int = 64, timeout_s: float = 10.0) -> redis.Redis:
    """A client with a blocking pool (threads wait for a connection, never fail)."""
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout_s,
        socket_timeout=timeout_s,
        socket_connect_timeout=min(timeout_s, 5.0),
        health_check_interval=30,
    )
    return redis.Redis(connection_pool=pool)


@contextmanager
def store_errors() -> Iterator[None]:
    try:
        yield
    except redis.RedisError as exc:
        raise StoreUnavailable(f"redis: {type(exc).__name__}: {exc}") from exc
