"""What Meta said of each template lately: its status (APPROVED, PAUSED, DISABLED,
REJECTED, ...) and quality (GREEN, YELLOW, RED), from the gateway's template webhooks.

One hash (``schema.TEMPLATES``), a field per ``<name>|<language>``, a JSON record each:
a business has hundreds of templates, not millions, so the view is read whole.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any, cast

import redis

from dispatcher.ledger import schema
from dispatcher.ledger.connection import store_errors

# Statuses after which Meta drops the template's messages: campaigns using it pause.
STOPPED = frozenset({"PAUSED", "DISABLED", "REJECTED", "PENDING_DELETION", "DELETED"})
# Statuses after which it sends again: campaigns paused for it resume.
SENDABLE = frozenset({"APPROVED", "REINSTATED"})
QUALITY_RANK = {"GREEN": 3, "HIGH": 3, "YELLOW": 2, "MEDIUM": 2, "RED": 1, "LOW": 1}


@dataclass(frozen=True)
class TemplateState:
    name: str
    language: str
    status: str | None = None
    quality: str | None = None
    reason: str | None = None
    template_id: str | None = None
    changed_at: float = 0.0  # unix s

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Templates:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def get(self, name: str, language: str) -> TemplateState | None:
        with store_errors():
            raw = cast(bytes | None, self.client.hget(schema.TEMPLATES, f"{name}|{language}"))
        return TemplateState(**json.loads(raw)) if raw else None

    def all(self) -> list[TemplateState]:
        with store_errors():
            raw = cast(dict[bytes, bytes], self.client.hgetall(schema.TEMPLATES))
        found = [TemplateState(**json.loads(v)) for v in raw.values()]
        return sorted(found, key=lambda t: (t.name, t.language))

    def record(self, name: str, language: str, **changes: Any) -> TemplateState:
        """Lay ``changes`` (status, quality, reason, template_id) over what was known."""
        before = self.get(name, language) or TemplateState(name, language)
        given = {k: v for k, v in changes.items() if v is not None}
        now = TemplateState(**{**before.to_dict(), **given, "changed_at": time.time()})
        with store_errors():
            self.client.hset(schema.TEMPLATES, f"{name}|{language}", json.dumps(now.to_dict()))
        return now
