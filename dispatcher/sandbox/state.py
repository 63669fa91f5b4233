"""The sandbox's memory: sent messages, contacts, customer-service windows and quotas.

All of it lives in one event loop, so there are no locks. ``reset()`` empties it.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from dispatcher.sandbox.config import SandboxKey


@dataclass
class RollingQuota:
    """At most ``limit`` calls in any ``window_s``: a log of call times (exact, O(limit))."""

    limit: int
    window_s: float
    calls: deque[float] = field(default_factory=deque)

    def take(self, now: float) -> float | None:
        """Count one call and return None, or return the seconds until one is allowed."""
        horizon = now - self.window_s
        while self.calls and self.calls[0] <= horizon:
            self.calls.popleft()
        if len(self.calls) >= self.limit:
            return self.calls[0] + self.window_s - now
        self.calls.append(now)
        return None


class SandboxState:
    """Everything the sandbox remembers between requests."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._ids = itertools.count(1)
        self.sent: list[dict[str, Any]] = []
        self.by_wamid: dict[str, dict[str, Any]] = {}
        self.contacts: dict[tuple[str, str], dict[str, Any]] = {}
        self.windows: dict[tuple[str, str], float] = {}
        self.quotas: dict[tuple[str, str], RollingQuota] = {}
        # Meta's messaging limit: per business, recipient -> last time it was reached.
        self.reached: dict[str, dict[str, float]] = {}
        self.counters: Counter[str] = Counter()

    def reset(self) -> None:
        self.__init__(self.window_s)  # type: ignore[misc]

    # --- ids -----------------------------------------------------------------------------

    def new_wamid(self) -> str:
        return f"wamid.SBX{next(self._ids):010d}{secrets.token_hex(6).upper()}"

    def new_qr_id(self) -> str:
        return f"BAE5{next(self._ids):08d}{secrets.token_hex(4).upper()}"

    def new_object_id(self) -> str:
        return f"6a2c5{next(self._ids):09x}{secrets.token_hex(5)}"

    # --- quotas --------------------------------------------------------------------------

    def take_quota(self, key: SandboxKey, now: float) -> tuple[float, str] | None:
        """Charge one call to the key's quotas: None, or (seconds to wait, which quota)."""
        for window, limit, label in (
            (60.0, key.per_minute, "minute"),
            (3600.0, key.per_hour, "hour"),
        ):
            if limit is None:
                continue
            quota = self.quotas.get((key.key, label))
            if quota is None or quota.limit != limit:
                quota = self.quotas[(key.key, label)] = RollingQuota(limit, window)
            wait = quota.take(now)
            if wait is not None:
                return wait, f"{limit} requests per {label}"
        return None

    # --- customer-service windows --------------------------------------------------------

    def open_window(self, our_number: str, customer: str, now: float) -> None:
        self.windows[(our_number, customer)] = now

    def window_open(self, our_number: str, customer: str, now: float) -> bool:
        opened = self.windows.get((our_number, customer))
        return opened is not None and now - opened < self.window_s

    # --- the messaging limit ------------------------------------------------------------

    def reach(self, business: str, recipient: str, now: float, tier: int) -> bool:
        """A business-initiated send to ``recipient``: True when it fits the business's
        messaging limit (a recipient reached in the last 24 hours costs nothing)."""
        reached = self.reached.setdefault(business, {})
        horizon = now - 86_400.0
        last = reached.get(recipient)
        if last is None or last <= horizon:
            for who in [w for w, at in reached.items() if at <= horizon]:
                del reached[who]
            if len(reached) >= tier:
                return False
        reached[recipient] = now
        return True

    # --- records -------------------------------------------------------------------------

    def record(self, entry: dict[str, Any]) -> dict[str, Any]:
        entry.setdefault("time", time.time())
        self.sent.append(entry)
        self.by_wamid[entry["wamid"]] = entry
        return entry
