"""HTTP header values the retry logic depends on."""

from __future__ import annotations

from email.utils import parsedate_to_datetime


def parse_retry_after(value: str | None, now_s: float) -> float | None:
    """``Retry-After`` in seconds from now: delta-seconds or an HTTP date; None if absent.

    A date in the past gives 0; an unreadable value gives None (the caller falls back to
    its own backoff rather than trusting a header it cannot read).
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        return max(0.0, when.timestamp() - now_s)
    if seconds != seconds or seconds < 0 or seconds == float("inf"):
        return None
    return seconds
