"""Meta's messaging limit as the ledger keeps it: per business portfolio, the recipients
of business-initiated sends in a moving 24 hours (``reach:<portfolio>``, written by the
admission script), the share of the tier each lane may use, and how much is used now.

Meta counts unique recipients outside a customer-service window; going over has no
error code (the message is accepted, then never delivered), so the dispatcher counts
them itself: a send is counted when it is admitted, and a recipient already in the
window costs nothing.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import redis

from config import Settings
from dispatcher.ledger import schema
from dispatcher.ledger.connection import store_errors

MESSAGING_WINDOW_S = 24 * 3600  # Meta's messaging limit counts over a moving 24 hours


def lane_budget(tier: int, lane: str, transactional_reserve: float) -> int:
    """Recipients ``lane`` may reach of ``tier``: the bulk lane leaves the transactional
    reserve (TRANSACTIONAL_RESERVE, the same share as every other limit's)."""
    if lane != "bulk":
        return tier
    return max(1, math.floor(tier * (1.0 - transactional_reserve)))


@dataclass(frozen=True)
class ReachUse:
    """One portfolio's messaging limit now."""

    portfolio: str
    tier: int | None  # None: unlimited
    reached: int  # recipients of business-initiated sends in the last 24 hours
    bulk_budget: int | None
    next_free_at_s: float | None  # when the oldest of them leaves the window

    @property
    def remaining(self) -> int | None:
        return None if self.tier is None else max(0, self.tier - self.reached)

    @property
    def bulk_remaining(self) -> int | None:
        return None if self.bulk_budget is None else max(0, self.bulk_budget - self.reached)

    def to_dict(self) -> dict[str, Any]:
        return {
            "portfolio": self.portfolio,
            "tier": self.tier if self.tier is not None else "unlimited",
            "reached24h": self.reached,
            "remaining": self.remaining,
            "bulkRemaining": self.bulk_remaining,
            "nextFreeAt": None
            if self.next_free_at_s is None
            else datetime.fromtimestamp(self.next_free_at_s, UTC).isoformat(timespec="seconds"),
        }


def reach_use(
    client: redis.Redis, settings: Settings, now_s: float | None = None
) -> list[ReachUse]:
    """Every configured portfolio's messaging limit, in one round trip."""
    now_s = time.time() if now_s is None else now_s
    since_ms = (now_s - MESSAGING_WINDOW_S) * 1000
    portfolios = settings.messaging_portfolios
    with store_errors():
        pipe = client.pipeline(transaction=False)
        for portfolio in portfolios:
            key = schema.reach(portfolio.name)
            pipe.zcount(key, f"({since_ms}", "+inf")
            pipe.zrangebyscore(key, f"({since_ms}", "+inf", start=0, num=1, withscores=True)
        replies = iter(pipe.execute())
    found = []
    for portfolio in portfolios:
        reached = cast(int, next(replies))
        oldest = cast(list[tuple[bytes, float]], next(replies))
        tier = None if portfolio.tier == "unlimited" else portfolio.tier
        found.append(
            ReachUse(
                portfolio.name,
                tier,
                reached,
                None if tier is None else lane_budget(tier, "bulk", settings.transactional_reserve),
                oldest[0][1] / 1000 + MESSAGING_WINDOW_S if oldest else None,
            )
        )
    return found
