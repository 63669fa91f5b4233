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

import hiredis
import redis
from redis._parsers.encoders import Encoder
from redis.connection import HiredisRespSerializer, PythonRespSerializer
from redis.sentinel import Sentinel, SentinelConnectionPool

from config import Settings
from dispatcher.errors import StoreUnavailable


class _CommandPacker:
    """Commands packed by hiredis in one C call. redis-py's own packer first runs every
    argument through Python (a generator and an encoder call each): 18 us for a script
    call of 33 arguments against 4 us, and the send loop packs two or three such calls
    a message. hiredis writes str (UTF-8), int, float and bytes exactly as redis-py
    does (``repr`` for numbers); what it refuses (a bool, None, a bytearray) and
    commands spelled with a space ("SCRIPT LOAD") go to redis-py's packer, which
    splits them or raises its own error."""

    def __init__(self) -> None:
        encoder = Encoder("utf-8", "strict", False)  # type: ignore[no-untyped-call]
        python = PythonRespSerializer(6000, encoder.encode)
        self._redis_py = HiredisRespSerializer(python.pack, encoder.encode)  # type: ignore[no-untyped-call]

    def pack(self, *args: Any) -> list[bytes]:
        first = args[0]
        if (b" " if isinstance(first, bytes) else " ") not in first:
            try:
                return [hiredis.pack_command(args)]
            except TypeError:
                pass
        return self._redis_py.pack(*args)  # type: ignore[no-any-return]


_PACKER = _CommandPacker()


class _SentinelBlockingPool(SentinelConnectionPool, redis.BlockingConnectionPool):
    """A Sentinel pool whose threads wait for a free connection, like the plain one.
    redis-py's Sentinel pool is unbounded; ours is bounded and blocking so that a
    worker's threads share a known number of connections with either kind of Redis."""


SOCKET_TIMEOUT_S = 10.0  # a Redis that answers nothing for this long is taken as gone


def connect(
    settings: Settings, *, max_connections: int = 64, timeout_s: float = SOCKET_TIMEOUT_S
) -> redis.Redis:
    """A client with a blocking pool (threads wait for a connection, never fail)."""
    options: dict[str, Any] = {
        "max_connections": max_connections,
        "timeout": timeout_s,
        "socket_timeout": timeout_s,
        "socket_connect_timeout": min(timeout_s, 5.0),
        "health_check_interval": 30,
        "command_packer": _PACKER,
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
