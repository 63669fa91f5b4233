"""Job ids: 32 hex characters that sort by creation time (like a UUIDv7 without dashes).

Time-ordered ids keep listings cheap (newest first) and make logs readable; the 80
random bits make collisions irrelevant. Campaign jobs derive theirs from (campaign,
run, recipient) instead, so a restart cannot create a second job for one recipient.
"""

from __future__ import annotations

import hashlib
import secrets
import time


def new_job_id(now_ms: int | None = None) -> str:
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    return f"{ms & 0xFFFFFFFFFFFF:012x}{secrets.token_hex(10)}"


def derived_job_id(*parts: str) -> str:
    """A stable id for a job defined by ``parts`` (same parts, same id)."""
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()
