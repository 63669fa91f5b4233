"""Reading the ledger's events stream: one entry per state change (and a few notes:
a worker lost, a message rejected, a number paused), capped at ``EVENTS_MAXLEN``.

Readers follow it by entry id: the newest entries first for a screen that starts now,
then whatever came after the last id it saw (the terminal of ``up``, the console).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from dispatcher.ledger import schema
from dispatcher.ledger.connection import store_errors


@dataclass(frozen=True)
class Event:
    id: str  # the stream entry's id: read on after it
    fields: dict[str, str]

    @property
    def state(self) -> str:
        return self.fields.get("state", "")

    @property
    def number(self) -> str:
        return self.fields.get("number", "")

    def to_dict(self) -> dict[str, Any]:
        """JSON for the HTTP API: ``id``, ``job``, ``state``, ``number``, ``at`` (ISO)
        and what else the entry says (``wamid``, ``code``, ``camp`` as ``campaignId``)."""
        found: dict[str, Any] = {"id": self.id}
        for name, value in self.fields.items():
            if name == "at" and value.isdigit():
                moment = datetime.fromtimestamp(int(value) / 1000, UTC)
                found["at"] = moment.isoformat(timespec="milliseconds")
            else:
                found[{"camp": "campaignId"}.get(name, name)] = value
        return found


class EventLog:
    """The events stream of one Redis."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def newest_id(self) -> str:
        """The id of the newest entry ("0-0" when there is none): read on from here."""
        newest = self.latest(1)
        return newest[0].id if newest else "0-0"

    def latest(self, count: int) -> list[Event]:
        """The newest ``count`` entries, oldest first."""
        with store_errors():
            entries: Any = self._client.xrevrange(schema.EVENTS, count=count)
        return [_event(entry) for entry in reversed(entries)]

    def after(self, entry_id: str, count: int) -> list[Event]:
        """Up to ``count`` entries after ``entry_id``, oldest first."""
        with store_errors():
            entries: Any = self._client.xrange(schema.EVENTS, min=f"({entry_id}", count=count)
        return [_event(entry) for entry in entries]


def _event(entry: tuple[bytes, dict[bytes, bytes]]) -> Event:
    entry_id, raw = entry
    return Event(entry_id.decode(), {k.decode(): v.decode() for k, v in raw.items()})
