"""What to do after a failed attempt: pure functions, randomness passed in.

Backoff is exponential with full jitter, capped; a Retry-After from the gateway wins
when it is longer. Meta's pair-rate error (PairRateLimited) backs off 4^n seconds, and
the per-user marketing cap (MarketingCapped) waits an interval that grows with each time
the recipient was capped lately (``MARKETING_CAP_BACKOFF_S``). Ambiguous outcomes follow
the lane's
policy: ``resend`` retries (a duplicate is possible and is counted), ``hold`` parks the
job as ``unknown``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from config import Settings
from dispatcher.errors import (
    Disposition,
    GatewayError,
    MarketingCapped,
    PairRateLimited,
)


@dataclass(frozen=True)
class Decision:
    """The state to record and, for a retry, when (seconds from now)."""

    state: str  # retry_wait | failed | expired | dead | unknown
    delay_s: float | None = None
    ambiguous: bool = False


def backoff_s(attempt: int, base_s: float, cap_s: float, rng: random.Random) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2^(attempt-1))]."""
    ceiling = min(cap_s, base_s * 2 ** max(0, attempt - 1))
    return rng.uniform(0.0, ceiling)


def marketing_cap_wait_s(times_capped: int, settings: Settings) -> float:
    """The wait after a recipient's ``times_capped``-th marketing cap (1 = the first)."""
    steps = settings.marketing_cap_backoff_s
    return steps[min(max(times_capped, 1), len(steps)) - 1]


def _retry_delay_s(
    error: GatewayError, attempt: int, settings: Settings, rng: random.Random, times_capped: int
) -> float:
    delay = backoff_s(attempt, settings.retry_base_delay_s, settings.retry_max_delay_s, rng)
    if isinstance(error, PairRateLimited):
        delay = float(4**attempt)
    elif isinstance(error, MarketingCapped):
        delay = max(delay, marketing_cap_wait_s(times_capped, settings))
    if error.retry_after_s is not None:
        delay = max(delay, error.retry_after_s)
    return delay


def decide(
    error: GatewayError,
    attempt: int,
    lane: str,
    settings: Settings,
    rng: random.Random,
    *,
    now_s: float = 0.0,
    expires_at_s: float | None = None,
    times_capped: int = 1,
) -> Decision:
    """The ledger transition for a failed attempt (the retry table in
    docs/life-of-a-job.md); ``times_capped``: how often the recipient met the marketing
    cap lately, this time included. Retries are budgeted in time: a job whose next
    attempt would come after its ``expiresAt`` (its own, or its lane's maximum age) is
    ``expired`` now; the attempt cap (``RETRY_MAX_ATTEMPTS``) only guards against a job
    that fails forever."""
    disposition = error.disposition
    ambiguous = disposition is Disposition.AMBIGUOUS
    if ambiguous:
        if settings.ambiguous_policy(lane) == "hold":
            return Decision("unknown", ambiguous=True)
        disposition = Disposition.RETRY
    if disposition is Disposition.PERMANENT:
        return Decision("failed")
    delay_s = _retry_delay_s(error, attempt, settings, rng, times_capped)
    if expires_at_s is not None and now_s + delay_s >= expires_at_s:
        return Decision("expired", ambiguous=ambiguous)
    if attempt >= settings.retry_max_attempts:
        return Decision("dead", ambiguous=ambiguous)
    return Decision("retry_wait", delay_s, ambiguous)


def error_fields(error: GatewayError) -> dict[str, Any]:
    """The ledger's ``error``: status, Meta code and the gateway's message."""
    return {"status": error.status, "code": error.code, "message": error.message}
