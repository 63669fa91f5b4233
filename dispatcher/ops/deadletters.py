"""Dead letters: jobs whose retries ran out, kept for inspection and replay.

A replay queues a new job with the original's envelope (a new id, fresh attempts); the two
are linked both ways (``replayOf`` / ``replayedAs``) and the original leaves the list.
"""

from __future__ import annotations

from typing import cast

from dispatcher.job.ids import new_job_id
from dispatcher.ledger import schema
from dispatcher.ledger.connection import store_errors
from dispatcher.ledger.jobs import Ledger
from dispatcher.ledger.records import JobRecord


class DeadLetters:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.client = ledger.client

    def list(self, *, code: int | None = None, limit: int = 100) -> list[JobRecord]:
        """Dead jobs, newest first; ``code`` keeps those whose last error had it (Meta
        code or HTTP status)."""
        with store_errors():
            ids = cast(list[bytes], self.client.zrevrange(schema.DEAD, 0, -1))
        found = []
        for raw in ids:
            record = self.ledger.get(raw.decode())
            if record is None or record.state != "dead" or record.replayed_as:
                continue
            error = record.error or {}
            if code is not None and code not in (error.get("code"), error.get("status")):
                continue
            found.append(record)
            if len(found) == limit:
                break
        return found

    def replay(self, job_id: str) -> str:
        """Queue the dead job again as a new job; returns the new job's id. A job is
        replayed once (KeyError after that, as for a job that is not dead)."""
        with store_errors():
            raw = cast(
                list[bytes | None],
                self.client.hmget(schema.job(job_id), "state", "replayed_as"),
            )
        original = self.ledger.envelope(job_id)
        if raw[0] != b"dead" or raw[1] is not None or original is None:
            raise KeyError(job_id)  # not dead, or replayed already
        replay = original.model_copy(
            update={
                "id": new_job_id(int(self.ledger.clock() * 1000)),
                "idempotency_key": None,
                "expires_at": None,
                "not_before": None,
            }
        )
        [new_id] = self.ledger.enqueue([replay])
        with store_errors():
            pipe = self.client.pipeline()
            pipe.hset(schema.job(new_id), "replay_of", job_id)
            pipe.hset(schema.job(job_id), "replayed_as", new_id)
            pipe.zrem(schema.DEAD, job_id)
            pipe.execute()
        return new_id
