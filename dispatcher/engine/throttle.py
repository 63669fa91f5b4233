"""The adaptive throttle's shape, shared by admission and outcomes.

A gateway in trouble is met per API key and per sending number, across every worker,
by client-side throttling (Google's SRE book, "Handling Overload"): admission
(``lua/admit.lua``) counts what it holds back and decides; the outcome
(``lua/finish.lua``) counts each call made and whether the gateway took it. Over the
window (buckets of ``BUCKET_MS``), R is calls made plus calls held back and A the calls
taken. Once R reaches the minimum, a call is held back (not an attempt) with
probability (R - K*A) / (R + 1). Unlike a breaker's stop-the-world hold, this keeps the
rate at what the gateway takes: at 35% failures (K = 2) nothing is held back, at 100%
only probes go. docs/recovery.md says more; docs/reliability.md has the figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from config import Settings
from dispatcher.ledger import schema

BUCKET_MS = 2000


@dataclass(frozen=True)
class Throttle:
    factor: float  # K; 0: off
    window_s: float
    min_calls: int
    probe_per_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Throttle:
        return cls(
            settings.throttle_accept_factor,
            settings.throttle_window_s,
            settings.throttle_min_calls,
            settings.throttle_probe_per_s,
        )

    @property
    def enabled(self) -> bool:
        return self.factor > 0

    @property
    def buckets(self) -> int:
        return max(1, math.ceil(self.window_s * 1000 / BUCKET_MS))

    @property
    def probe_interval_ms(self) -> float:
        return 1000.0 / self.probe_per_s

    def scopes(self, key_name: str | None, number: str | None) -> list[str]:
        """The Redis keys of the scopes a call counts in (its key's, its number's): a
        hash of the window's counts each, with its probe slot beside it (``:probe``)."""
        found = []
        if key_name is not None:
            found.append(schema.throttle(f"key:{key_name}"))
        if number is not None:
            found.append(schema.throttle(f"num:{number}"))
        return found if self.enabled else []

    def call(self, scopes: list[str], taken: bool) -> dict[str, object]:
        """The outcome fields (finish.lua) that count one call, and whether the gateway
        took it."""
        if not scopes:
            return {}
        return {
            "scopes": scopes,
            "taken": int(taken),
            "bucket_ms": BUCKET_MS,
            "buckets": self.buckets,
        }
