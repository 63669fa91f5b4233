"""Job ids: 32 hex characters that sort by creation time (like a UUIDv7 without dashes).

Time-ordered ids keep listings cheap (newest first) and make logs readable; the 80
random bits make collisions irrelevant. Campaign jobs derive theirs from (campaign,
run, recipient) instead, so a restart cannot create a second job for one recipient.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time

_RANDOM_BYTES = 10
_BATCH = 512


class _RandomPool:
    """Random bytes from the OS, fetched 512 ids' worth at a time: one ``getrandom``
    system call per id cost about 12 us, a fifth of ``send_many``'s time per job."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer = b""
        self._offset = 0
        self._pid = os.getpid()

    def take(self) -> bytes:
        with self._lock:
            if self._offset >= len(self._buffer) or self._pid != os.getpid():
                # A forked child must not reuse its parent's bytes.
                self._buffer, self._offset, self._pid = (
                    os.urandom(_RANDOM_BYTES * _BATCH),
                    0,
                    os.getpid(),
                )
            start = self._offset
            self._offset += _RANDOM_BYTES
            return self._buffer[start : start + _RANDOM_BYTES]


_pool = _RandomPool()


def new_job_id(now_ms: int | None = None) -> str:
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    return f"{ms & 0xFFFFFFFFFFFF:012x}{_pool.take().hex()}"


def derived_job_id(*parts: str) -> str:
    """A stable id for a job defined by ``parts`` (same parts, same id)."""
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()
