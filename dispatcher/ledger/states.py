"""A job's states, named once for Python; ``lua/prelude.lua`` names the same sets for the
scripts (``TERMINAL``, ``INFLIGHT``, ``SENT_STATES``, ``RANK``) and
``tests/test_ledger_schema.py`` checks that the two agree.

A job moves forward only: ``scheduled``/``queued`` -> ``sending`` -> ``sent`` ->
``delivered`` -> ``read``, with ``retry_wait`` between attempts, and ends in one of the
terminal states. ``unknown`` is terminal until a webhook settles it (a send that may or
may not have reached the gateway).
"""

from __future__ import annotations

STATES = (
    "scheduled",
    "queued",
    "sending",
    "retry_wait",
    "sent",
    "delivered",
    "read",
    "failed",
    "dead",
    "cancelled",
    "expired",
    "unknown",
    "skipped",
)
TERMINAL_STATES = frozenset(
    {"sent", "delivered", "read", "failed", "dead", "cancelled", "expired", "unknown", "skipped"}
)
IN_FLIGHT_STATES = frozenset(set(STATES) - TERMINAL_STATES | {"unknown"})
SENT_STATES = frozenset({"sent", "delivered", "read"})
# Delivery statuses in the order a webhook may move a job (never backwards).
STATUS_RANK = {"sent": 1, "delivered": 2, "read": 3}
