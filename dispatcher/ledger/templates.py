"""What Meta said of each template lately: its status (APPROVED, PAUSED, DISABLED,
REJECTED, ...) and quality (GREEN, YELLOW, RED), from the gateway's template webhooks.

One hash (``schema.TEMPLATES``), a field per ``<name>|<language>``, a JSON record each:
a business has hundreds of templates, not millions, so the view is read whole.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
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
# How stale a worker's view of the stopped templates may be (StoppedTemplates).
VIEW_MAX_AGE_S = 1.0


def same_template(said: tuple[str, str], sent: tuple[str, str]) -> bool:
    """Whether what Meta said of template ``said`` (name, language) is about a message
    that sends ``sent``: Meta's code (``en_US``) also matches a message that says ``en``;
    no language in what Meta said matches any."""
    (name, language), (sent_name, sent_language) = said, sent
    if name != sent_name:
        return False
    return not language or sent_language in (language, language.split("_")[0])


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
        """Lay ``changes`` (status, quality, reason, template_id) over what was known,
        in a WATCH transaction: a status and a quality change of one template arriving
        at once (two webhook requests) both stay."""
        field = f"{name}|{language}"
        given = {k: v for k, v in changes.items() if v is not None}
        recorded: list[TemplateState] = []

        def lay_over(pipe: redis.client.Pipeline) -> None:
            raw = cast(bytes | None, pipe.hget(schema.TEMPLATES, field))
            before = TemplateState(**json.loads(raw)) if raw else TemplateState(name, language)
            now = TemplateState(**{**before.to_dict(), **given, "changed_at": time.time()})
            pipe.multi()
            pipe.hset(schema.TEMPLATES, field, json.dumps(now.to_dict()))
            recorded[:] = [now]

        with store_errors():
            self.client.transaction(lay_over, schema.TEMPLATES)
        return recorded[0]

    def release_held(self, name: str, language: str, now_s: float | None = None) -> int:
        """Meta sends the template again: the jobs held for it are due as soon as every
        worker's view has seen it (``VIEW_MAX_AGE_S``; sooner, a worker would hold them
        again). Returns how many."""
        held = schema.template_held(f"{name}|{language}")
        now_ms = int(((time.time() if now_s is None else now_s) + VIEW_MAX_AGE_S + 0.5) * 1000)
        with store_errors():
            jobs = cast(set[bytes], self.client.smembers(held))
            pipe = self.client.pipeline()
            for job_id in jobs:
                pipe.zadd(schema.TIMERS, {job_id: now_ms}, xx=True)
            pipe.delete(held)
            pipe.execute()
        return len(jobs)


class StoppedTemplates:
    """Which templates Meta has stopped, as a worker asks before each template send. The
    whole view is read at most once a second per process (a business has hundreds of
    templates): no round trip per message, and a stop reaches every worker within a
    second."""

    def __init__(
        self,
        templates: Templates,
        max_age_s: float = VIEW_MAX_AGE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.templates = templates
        self.max_age_s = max_age_s
        self.clock = clock
        self._stopped: list[TemplateState] = []
        self._read_at = -math.inf
        self._lock = threading.Lock()

    def stopping(self, sent: tuple[str, str]) -> TemplateState | None:
        """What Meta said that stops template ``sent`` (name, language), if anything."""
        stopped = self._view()
        return next((t for t in stopped if same_template((t.name, t.language), sent)), None)

    def any_stopped(self) -> bool:
        """Whether Meta has stopped any template."""
        return bool(self._view())

    def _view(self) -> list[TemplateState]:
        with self._lock:
            if self.clock() - self._read_at >= self.max_age_s:
                self._stopped = [t for t in self.templates.all() if t.status in STOPPED]
                self._read_at = self.clock()
            return self._stopped
