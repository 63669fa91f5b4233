"""The producer API: ``from dispatcher import Dispatcher``.

Every method validates first (nothing invalid is queued; InvalidRequest names the field
and the rule), then records and publishes the job in one atomic Redis step, and returns
the job id once that step has returned.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import redis

from config import Settings, load_settings
from dispatcher.errors import FieldProblem, InvalidRequest
from dispatcher.gateway import parse_send
from dispatcher.gateway.cloud import TemplatePayload
from dispatcher.job.envelope import JobEnvelope, envelope_for
from dispatcher.job.ids import new_job_id
from dispatcher.job.line import parse_job
from dispatcher.job.queues import LANES, Lane
from dispatcher.ledger.connection import connect
from dispatcher.ledger.jobs import Clock, Ledger
from dispatcher.ledger.records import TERMINAL_STATES, JobRecord
from dispatcher.producer.sends import TypedSends

Channel = Literal["cloud", "qr"]


@dataclass(frozen=True)
class Enqueued:
    """A queued job; ``duplicate`` when its idempotency key had been seen (the id is the
    first job's, and nothing new was queued)."""

    job_id: str
    duplicate: bool = False


class Dispatcher(TypedSends):
    """Enqueue send jobs and read what became of them. Thread-safe."""

    def __init__(
        self, settings: Settings, client: redis.Redis | None = None, clock: Clock = time.time
    ) -> None:
        self.settings = settings
        self.ledger = Ledger(client or connect(settings.redis_url), settings, clock)
        self._channels = {n: k.channels for k in settings.keys for n in k.numbers}
        self._qr_by_session = any("qr" in k.channels for k in settings.keys)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Dispatcher:
        """A dispatcher for ``settings``, or for the environment when none are given."""
        return cls(settings or load_settings())

    def close(self) -> None:
        self.ledger.client.close()

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the general form ----------------------------------------------------------------

    def prepare(
        self,
        channel: str,
        message_type: str,
        body: Mapping[str, Any],
        *,
        lane: str = "transactional",
        idempotency_key: str | None = None,
        not_before: datetime | None = None,
        expires_at: datetime | None = None,
        campaign_id: str | None = None,
        fallback_template: TemplatePayload | Mapping[str, Any] | None = None,
        job_id: str | None = None,
    ) -> JobEnvelope:
        """Validate a job and build its envelope; raises InvalidRequest, queues nothing."""
        request = parse_send(channel, message_type, dict(body))
        problems = []
        if lane not in LANES:
            problems.append(FieldProblem("priority", f"must be one of {', '.join(LANES)}"))
        number = request.from_phone_no
        if number is None:
            if not self._qr_by_session:
                problems.append(
                    FieldProblem(
                        "sessionId",
                        "needs a configured key with the qr channel; or give fromPhoneNo",
                    )
                )
        elif number not in self._channels:
            problems.append(FieldProblem("fromPhoneNo", "is not a number of any configured key"))
        elif channel not in self._channels[number]:
            problems.append(
                FieldProblem("fromPhoneNo", f"is not configured for the {channel} channel")
            )
        now = self.ledger.clock()
        for name, when in (("notBefore", not_before), ("expiresAt", expires_at)):
            if when is not None and when.tzinfo is None:
                problems.append(FieldProblem(name, "must carry a time zone"))
        if expires_at is not None and expires_at.tzinfo and expires_at.timestamp() <= now:
            problems.append(FieldProblem("expiresAt", "must be in the future"))
        if problems:
            raise InvalidRequest(problems)
        max_age_s = (
            self.settings.max_age_transactional_s
            if lane == "transactional"
            else self.settings.max_age_bulk_s
        )
        if expires_at is None and max_age_s > 0:
            expires_at = datetime.fromtimestamp(now + max_age_s, UTC)
        return envelope_for(
            job_id or new_job_id(int(now * 1000)),
            request,
            channel=channel,  # type: ignore[arg-type]
            message_type=message_type,
            lane=lane,  # type: ignore[arg-type]
            idempotency_key=idempotency_key,
            campaign_id=campaign_id,
            not_before=not_before,
            expires_at=expires_at,
            fallback_template=fallback_template,
        )

    def enqueue(
        self, channel: str, message_type: str, body: Mapping[str, Any], **options: Any
    ) -> Enqueued:
        """Validate, record and publish one job; says whether it was a duplicate."""
        [result] = self.ledger.enqueue([self.prepare(channel, message_type, body, **options)])
        return Enqueued(result.removeprefix("dup:"), result.startswith("dup:"))

    def send(self, channel: str, message_type: str, body: Mapping[str, Any], **options: Any) -> str:
        """Queue one job in the gateway's own body shape; returns the job id."""
        return self.enqueue(channel, message_type, body, **options).job_id

    def send_many(
        self, jobs: Iterable[Mapping[str, Any]], *, lane: Lane = "bulk", chunk_size: int = 500
    ) -> list[Enqueued | InvalidRequest]:
        """Queue many jobs (send-many lines); one result per input, in order.

        Valid jobs are recorded ``chunk_size`` at a time in one script call each and
        published as batch messages per number; invalid ones come back as the
        InvalidRequest that refused them and queue nothing.
        """
        results: list[Enqueued | InvalidRequest | None] = []
        pending: list[tuple[int, JobEnvelope]] = []
        # One script call in flight while the next chunk is validated: Redis runs the
        # script on its own core while this thread prepares the next one.
        writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="waapi-send-many")
        in_flight: Future[None] | None = None

        def write(chunk: list[tuple[int, JobEnvelope]]) -> None:
            ids = self.ledger.enqueue([e for _, e in chunk], mode="batch")
            for (index, _), result in zip(chunk, ids, strict=True):
                results[index] = Enqueued(result.removeprefix("dup:"), result.startswith("dup:"))

        def flush() -> None:
            nonlocal in_flight, pending
            if in_flight is not None:
                in_flight.result()  # raises what the previous chunk raised
            in_flight = writer.submit(write, pending)
            pending = []

        try:
            for item in jobs:
                results.append(None)
                try:
                    spec = parse_job(item)
                    opts = spec.options
                    envelope = self.prepare(
                        spec.channel,
                        spec.type,
                        spec.body,
                        lane=opts.priority or lane,
                        idempotency_key=opts.idempotency_key,
                        not_before=opts.not_before,
                        expires_at=opts.expires_at,
                        campaign_id=opts.campaign_id,
                        fallback_template=opts.fallback_template,
                    )
                except InvalidRequest as exc:
                    results[-1] = exc
                    continue
                pending.append((len(results) - 1, envelope))
                if len(pending) >= chunk_size:
                    flush()
            if pending:
                flush()
            if in_flight is not None:
                in_flight.result()
        finally:
            writer.shutdown(wait=True)
        return [r for r in results if r is not None]

    # --- reading -------------------------------------------------------------------------

    def job(self, job_id: str) -> JobRecord | None:
        """The job's record, or None when unknown (or past retention)."""
        return self.ledger.get(job_id)

    def jobs(
        self, *, state: str | None = None, number: str | None = None, limit: int = 50
    ) -> list[JobRecord]:
        """Recent jobs, newest first, optionally of one state or sending number."""
        return self.ledger.list(state=state, number=number, limit=limit)

    def wait(
        self,
        job_id: str,
        *,
        until: Iterable[str] = TERMINAL_STATES,
        timeout_s: float = 30.0,
        interval_s: float = 0.05,
    ) -> JobRecord | None:
        """Poll until the job reaches one of ``until`` (default: settled) or time runs out."""
        wanted = set(until)
        deadline = time.monotonic() + timeout_s
        record = self.job(job_id)
        while (record is None or record.state not in wanted) and time.monotonic() < deadline:
            time.sleep(interval_s)
            record = self.job(job_id)
        return record
