"""A send loop's own Redis connection, read when its socket is readable.

The loop's Redis rounds go together in one pipeline per turn (:mod:`.rounds`). Made
with redis-py, the loop waited for each pipeline's replies: 40% of its wall time in a
profile of a busy worker, while HTTP replies that had come waited behind it. Here the
pipeline is written in one call and its replies are parsed as they arrive (the event
loop's reader callback feeds a ``hiredis.Reader``), so the loop goes on with its sends
meanwhile, and several pipelines may be on the wire at once (Redis answers in order).

redis-py still makes the connection (address, Sentinel's master, AUTH, SELECT, the
command packer): the wire takes one connection from the client's pool for itself and
gives it back when it breaks. Only a plain TCP or Unix socket is read this way; TLS
(whose records need not align with the socket's readiness) keeps the pipeline as it
was. redis-py has no non-blocking read of a connection it made (its asyncio client is a
second client of its own: 1,720 msg/s against 1,838-1,926 in the same hour), hence
this module.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
from dataclasses import dataclass, field
from typing import Any

import hiredis
import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import (
    InvalidResponse,
    ReadOnlyError,
    ResponseError,
)
from redis.exceptions import TimeoutError as RedisTimeoutError

from dispatcher.ledger.connection import SOCKET_TIMEOUT_S

READ_SIZE = 65536


def reply_error(message: str) -> ResponseError:
    """An error reply as redis-py's parser names READONLY, which the rounds tell apart (a
    demoted master: the wire is made again, to the master Sentinel names now)."""
    if message.startswith("READONLY"):
        return ReadOnlyError(message)
    return ResponseError(message)


@dataclass
class _Pipeline:
    count: int  # replies it waits for
    answer: asyncio.Future[list[Any]]
    deadline: float  # loop time
    replies: list[Any] = field(default_factory=list)


class Wire:
    """One connection of ``client``'s pool, used by one event loop (every method on its
    thread). :meth:`send` writes a pipeline of commands and returns the future of its
    replies, in order (error replies as exceptions); a connection that breaks, or
    answers nothing within the client's socket timeout, fails every pipeline waiting on
    it with redis-py's ConnectionError or TimeoutError, and the next send connects
    again."""

    def __init__(self, loop: asyncio.AbstractEventLoop, client: redis.Redis) -> None:
        self._loop = loop
        self._pool = client.connection_pool
        self._connection: Any = None  # a redis-py Connection while connected
        self._socket: socket.socket | None = None
        self._reader: Any = None  # hiredis.Reader
        self._buffer = bytearray(READ_SIZE)
        self._waiting: collections.deque[_Pipeline] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None
        self._timeout_s = SOCKET_TIMEOUT_S
        self._demoted = False  # a READONLY reply came: connect again once answered

    @staticmethod
    def serves(client: redis.Redis) -> bool:
        """Whether this client's connections can be read this way (plain sockets)."""
        kind = client.connection_pool.connection_class
        plain = issubclass(kind, redis.Connection | redis.UnixDomainSocketConnection)
        return plain and not issubclass(kind, redis.SSLConnection)

    def send(self, commands: list[tuple[Any, ...]]) -> asyncio.Future[list[Any]]:
        answer: asyncio.Future[list[Any]] = self._loop.create_future()
        try:
            connection = self._connected()
            connection.send_packed_command(connection.pack_commands(commands), check_health=False)
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            error = _as_redis_error(exc)
            self._broken(error)
            answer.set_exception(error)
            return answer
        deadline = self._loop.time() + self._timeout_s
        self._waiting.append(_Pipeline(len(commands), answer, deadline))
        if self._timer is None:
            self._timer = self._loop.call_at(deadline, self._check_deadline)
        return answer

    def close(self) -> None:
        self._broken(RedisConnectionError("the send loop is stopping"))

    def _connected(self) -> Any:
        if self._connection is not None:
            return self._connection
        connection = self._pool.get_connection()
        sock = connection._sock  # redis-py keeps the connected socket here
        if sock is None:
            self._pool.release(connection)
            raise RedisConnectionError("redis: the connection has no socket")
        self._connection, self._socket = connection, sock
        self._timeout_s = connection.socket_timeout or SOCKET_TIMEOUT_S
        self._reader = hiredis.Reader(protocolError=InvalidResponse, replyError=reply_error)
        self._loop.add_reader(sock.fileno(), self._readable)
        return connection

    def _readable(self) -> None:
        sock = self._socket
        if sock is None:
            return
        try:
            size = sock.recv_into(self._buffer)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._broken(_as_redis_error(exc))
            return
        if size == 0:
            self._broken(RedisConnectionError("redis: connection closed by server"))
            return
        self._reader.feed(self._buffer, 0, size)
        while self._waiting:
            try:
                reply = self._reader.gets()
            except InvalidResponse as exc:
                self._broken(RedisConnectionError(f"redis: {exc}"))
                return
            if reply is False:
                break
            pipeline = self._waiting[0]
            pipeline.replies.append(reply)
            if isinstance(reply, ReadOnlyError):
                self._demoted = True
            if len(pipeline.replies) == pipeline.count:
                self._waiting.popleft()
                if not pipeline.answer.done():
                    pipeline.answer.set_result(pipeline.replies)
        if self._demoted and not self._waiting:
            self._demoted = False
            self._broken(RedisConnectionError("redis: READONLY, the master moved"))

    def _check_deadline(self) -> None:
        self._timer = None
        if not self._waiting:
            return
        oldest = self._waiting[0].deadline
        if self._loop.time() >= oldest:
            self._broken(RedisTimeoutError("redis: timeout reading from the socket"))
        else:
            self._timer = self._loop.call_at(oldest, self._check_deadline)

    def _broken(self, error: Exception) -> None:
        """Drop the connection (it is given back disconnected: the pool connects it
        again) and fail what waited on it."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiting, self._waiting = self._waiting, collections.deque()
        connection, sock = self._connection, self._socket
        self._connection = self._socket = self._reader = None
        if sock is not None:
            with contextlib.suppress(ValueError, OSError):  # already closed
                self._loop.remove_reader(sock.fileno())
        if connection is not None:
            connection.disconnect()
            self._pool.release(connection)
        for pipeline in waiting:
            if not pipeline.answer.done():
                pipeline.answer.set_exception(error)


def _as_redis_error(exc: BaseException) -> Exception:
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        return exc
    return RedisConnectionError(f"redis: {type(exc).__name__}: {exc}")
