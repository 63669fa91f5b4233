"""The Redis connection: built from settings once, with timeouts set, errors translated.

redis-py 8 defaults ``socket_timeout`` to 5 s; we set both timeouts explicitly, and
``store_errors()`` turns any redis-py exception into StoreUnavailable at the boundary.
With a Sentinel group (``REDIS_URL=sentinel://...``) the pool asks the Sentinels for the
master at each new connection; a connection whose server died, or answers READONLY
because it is a replica now, is dropped (redis-py's SentinelManagedConnection) and the
next one goes to the master the Sentinels name then.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from redis.sentinel import Sentinel, SentinelConnectionPool

from config import Settings
from dispatcher.errors import StoreUnavailable


class _SentinelBlockingPool(SentinelConnectionPool, redis.BlockingConnectionPool):
    """A Sentinel pool whose threads wait for a free connection, like the plain one.
    redis-py's Sentinel pool is unbounded; ours is bounded and blocking so that a
    worker's threads share a known number of connections with either kind of Redis."""


def connect(
    settings: Settings, *, max_connections: int = 64, timeout_s: float = 10.0
) -> redis.Redis:
    """A client with a blocking pool (threads wait for a connection, never fail)."""
    options: dict[str, Any] = {
        "max_connections": max_connections,
        "timeout": timeout_s,
        "socket_timeout": timeout_s,
        "socket_connect_timeout": min(timeout_s, 5.0),
        "health_check_interval": 30,
    }
    group = settings.sentinel
    if group is None:
        return redis.Redis(
            connection_pool=redis.BlockingConnectionPool.from_url(settings.redis_url, **options)
        )
    # Any: redis-py annotates Sentinel.__init__ from 8.2 on, not before (either passes).
    sentinel_type: Any = Sentinel
    sentinels = sentinel_type(
        group.sentinels,
        sentinel_kwargs={
            "password": group.sentinel_password,
            "socket_timeout": options["socket_connect_timeout"],
            "socket_connect_timeout": options["socket_connect_timeout"],
        },
    )
    pool = _SentinelBlockingPool(  # type: ignore[no-untyped-call]
        group.master,
        sentinels,
        db=group.db,
        username=group.username,
        password=group.password,
        **options,
    )
    return redis.Redis(connection_pool=pool)


@contextmanager
def store_errors() -> Iterator[None]:
    try:
        yield
    except redis.RedisError as exc:
        raise StoreUnavailable(f"redis: {type(exc).__name__}: {exc}") from exc
