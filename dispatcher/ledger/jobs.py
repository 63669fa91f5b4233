"""The job ledger in Redis: one record per job, moved forward only by atomic scripts.

Redis is the transport and the ledger is the truth: a queue message only says "look at
job X"; whether X may be sent is decided by ``claim`` (queued|retry_wait -> sending,
with a lease). Every change is appended to the ``waapi:events`` stream.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict, Unpack, cast

import redis

from config import Settings
from dispatcher.errors import OptedOut, RefusedAtFanOut
from dispatcher.job.envelope import JobEnvelope
from dispatcher.job.queues import queue_name
from dispatcher.ledger import schema
from dispatcher.ledger.connection import store_errors
from dispatcher.ledger.records import (
    ENVELOPE_FIELDS,
    JobRecord,
    envelope_of,
    stored_envelope,
)
from dispatcher.ledger.replicas import ReplicaConfirm
from dispatcher.ledger.scripts import Scripts, StoreSteps, at_once, now

Clock = Callable[[], float]
PublishMode = Literal["each", "batch", "none"]


def _ms(clock: Clock) -> int:
    return int(clock() * 1000)


# The next claim a worker thread makes with an outcome (Ledger.finish_then): claim a job
# by id, or take from a queue; a take may name its worker group's digest (what
# Ledger.serve returned) as well: when its queue is empty (or it names none, ''), the
# same script takes from any ready queue of the group.
NextClaim = tuple[Literal["take", "claim"], str] | tuple[Literal["take"], str, str]


class Outcome(TypedDict, total=False):
    """What an attempt's outcome records beside its state (finish.lua)."""

    wamid: str | None  # the message the gateway accepted
    error: dict[str, Any] | None  # status, code, message: why it was not sent
    next_attempt_ms: int | None  # a retry's time
    timer_ms: int | None  # when the tick looks at it (default: next_attempt_ms)
    ambiguous: bool  # the send may or may not have reached the gateway
    fallback: bool  # sent as its fallback template
    gateway_ms: float | None  # the call's duration (the gateway latency histogram)
    call: Mapping[str, object] | None  # Throttle.call: the call, for the adaptive throttle


SERVED_TTL_S = 3600  # a worker group's served queues outlive its last heartbeat this long


@dataclass(frozen=True)
class Claim:
    """This worker may send ``job_id`` now; ``attempt`` fences its outcome."""

    job_id: str
    attempt: int
    stored_envelope: str  # the record's 'env': the envelope without the record's columns
    columns: tuple[str | None, ...]  # the record's ENVELOPE_COLUMNS (records.py), in order
    window: str = "unknown"  # the recipient's window as the webhooks told: open|closed|unknown
    suppressed: str = ""  # why the recipient is on the suppression list, or ""
    token: str = ""  # the holder's token for this claim (Ledger.unclaim gives it back)
    # admit.lua's answer when the claim script admitted the job with its claim (take.lua,
    # claim.lua: admit_claimed), else None
    admission: list[Any] | None = None
    backlog: int = 0  # messages left in the queue it was taken from (take.lua); 0 by id

    def envelope(self) -> JobEnvelope:
        """The claimed job's envelope, rebuilt from its record."""
        return envelope_of(self.job_id, self.stored_envelope, self.columns)


ClaimAnswer = Claim | str | None  # a claim made, why not, or None: an empty queue


@dataclass(frozen=True)
class TickResult:
    published: int
    resent: int
    held: int
    dropped: int

    @property
    def total(self) -> int:
        return self.published + self.resent + self.held + self.dropped


@dataclass(frozen=True)
class Recovered:
    """What one recovery pass found (recover.lua)."""

    dead_workers: int
    claims_resent: int
    claims_held: int
    messages_restored: int
    republished: int
    waiting: bool  # judgements wait after a gap in the passes (an outage)
    claims_returned: int = 0  # never admitted: not sent, queued again (not ambiguous)

    @property
    def total(self) -> int:
        return (
            self.dead_workers
            + self.claims_resent
            + self.claims_held
            + self.claims_returned
            + self.messages_restored
            + self.republished
        )


def job_fields(envelope: JobEnvelope, run: int | None = None) -> tuple[str | int, ...]:
    """The 14 values the enqueue script stores for one job, in its order."""
    return (
        envelope.id,
        stored_envelope(envelope),
        queue_name(envelope.channel, envelope.from_phone_no, envelope.lane),
        envelope.channel,
        envelope.type,
        envelope.to,
        envelope.from_phone_no or "",
        envelope.session_id or "",
        envelope.lane,
        envelope.idempotency_key or "",
        envelope.campaign_id or "",
        int(envelope.not_before.timestamp() * 1000) if envelope.not_before else 0,
        int(envelope.expires_at.timestamp() * 1000) if envelope.expires_at else 0,
        "" if run is None else str(run),
    )


@dataclass(frozen=True)
class JobFilter:
    """Which jobs a search keeps: of one state, sent from one number, of one campaign, to
    one recipient (each None: any), and only from ``numbers`` when given (a producer
    token's numbers)."""

    state: str | None = None
    number: str | None = None
    campaign: str | None = None
    to: str | None = None
    numbers: tuple[str, ...] | None = None


@dataclass
class JobPage:
    """A page of a search: the records found, how many jobs were read to find them, and
    the cursor to read on from (None when the index was read to its end)."""

    records: list[JobRecord]
    scanned: int = 0
    next_before_ms: int | None = None


class Ledger:
    """Job records and their transitions. Thread-safe (one Redis pool, atomic scripts)."""

    def __init__(self, client: redis.Redis, settings: Settings, clock: Clock = time.time) -> None:
        self.client = client
        self.settings = settings
        self.clock = clock
        # Enqueues and claims wait for replicas when the settings say so (replicas.py).
        confirm = ReplicaConfirm(
            client, settings.replicas_to_confirm, settings.redis_confirm_timeout_ms
        )
        self.scripts = Scripts(client, settings.events_maxlen, settings.job_retention_s, confirm)
        # Unknown jobs wait this long for their webhook, when webhooks come at all.
        webhooks = any(key.webhook_verify_token is not None for key in settings.keys)
        self._recheck_ms = int(settings.unknown_recheck_s * 1000) if webhooks else 0

    # --- writing -----------------------------------------------------------------------

    def enqueue(
        self,
        envelopes: Sequence[JobEnvelope],
        mode: PublishMode = "each",
        run: int | None = None,
    ) -> list[str]:
        """Record and publish jobs atomically; returns each job's id, or for a repeated
        idempotency key (or an id already recorded) the first job's id prefixed ``dup:``.
        ``run``: the campaign run the jobs belong to (its funnel counts them)."""
        if not envelopes:
            return []
        return self.enqueue_fields([job_fields(e, run) for e in envelopes], mode)

    def enqueue_fields(
        self, jobs: Sequence[Sequence[str | int]], mode: PublishMode, batch_size: int = 100
    ) -> list[str]:
        result = self.scripts.call(
            "enqueue",
            _ms(self.clock),
            self.settings.idempotency_window_s,
            mode,
            batch_size,
            json.dumps(jobs, separators=(",", ":")),
        )
        return [item.decode() for item in result]

    def _terms(self, holder: str, token: str) -> tuple[int, int, str, str]:
        """A claim's terms (claim.lua, take.lua): lease (ms), attempts allowed, holder,
        token."""
        lease_ms = int(self.settings.job_lease_s * 1000)
        return lease_ms, self.settings.retry_max_attempts, holder, token

    def _call_for(
        self, then: NextClaim, holder: str, token: str, admit: Sequence[Any] = ()
    ) -> tuple[str, tuple[Any, ...]]:
        """The script and arguments of a claim (claim.lua, take.lua); ``admit``: the
        admission the script makes with the claim (``Limiter.queue_plan``; none when
        empty)."""
        name, subject = then[0], then[1]
        if name == "claim":
            return "claim", (subject, *self._terms(holder, token), *admit)
        served = then[2] if len(then) > 2 else ""
        return "take", (subject, *self._terms(holder, token), served, *admit)

    def claim(self, job_id: str, holder: str = "", token: str = "") -> Claim | str:
        """Claim the job for one attempt, or return why not (its state, 'missing', ...).
        ``holder`` is the claiming worker's identity (its heartbeat name): when it dies,
        recovery finds the claim; ``token`` names this claim for :meth:`unclaim`."""
        answer = now(self.take_steps(("claim", job_id), holder, token))
        assert answer is not None  # only a queue can be empty
        return answer

    def take(self, queue: str, holder: str = "", token: str = "") -> Claim | str | None:
        """Take the next message of ``queue`` and claim its job in one step (take.lua):
        a Claim to send, the reason not to (as :meth:`claim`), or None when the queue is
        empty or its next message is for Celery's consumer to handle."""
        return now(self.take_steps(("take", queue), holder, token))

    def take_any(self, served: str, holder: str = "", token: str = "") -> Claim | str | None:
        """:meth:`take` from any transactional queue that may hold messages and that the
        caller's worker group serves (``served``: the digest :meth:`serve` returned)."""
        return now(self.take_steps(("take", "", served), holder, token))

    def take_steps(
        self, then: NextClaim, holder: str, token: str, admit: Sequence[Any] = ()
    ) -> StoreSteps[ClaimAnswer]:
        """A claim as a step: :meth:`claim` (``("claim", job_id)``), :meth:`take`
        (``("take", queue)``, or ``("take", queue, served)`` to go on with the group's
        other queues) or :meth:`take_any` (``("take", "", served)``); the job is admitted
        with its claim when ``admit`` plans it."""
        call = self._call_for(then, holder, token, admit)
        [answer] = yield self.scripts.round(_ms(self.clock), call)
        return _answer_of(then, answer, token)

    def serve(self, queues: Sequence[str]) -> str:
        """Say which transactional queues a worker group serves (its draining threads may
        take their messages: :meth:`take_any`); returns the digest that names the group.
        Workers with the same queues share it. Called again on every heartbeat: it costs
        one EXPIRE unless the set was lost (a Redis restarted empty)."""
        names = sorted(set(queues))
        digest = hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]
        key = schema.served(digest)
        with store_errors():
            if not self.client.expire(key, SERVED_TTL_S) and names:
                pipe = self.client.pipeline()
                pipe.sadd(key, *names)
                pipe.expire(key, SERVED_TTL_S)
                pipe.execute()
        return digest

    def finish_steps(
        self, job_id: str, attempt: int, state: str, **outcome: Unpack[Outcome]
    ) -> StoreSteps[bool]:
        """Record an attempt's outcome (:meth:`outcome_args`); False when the job had
        already moved on. A step; :meth:`finish` makes it at once."""
        args = self.outcome_args(job_id, attempt, state, **outcome)
        [result] = yield self.scripts.round(_ms(self.clock), ("finish", args))
        return int(result[0]) == 1

    finish = at_once(finish_steps)

    def finish_then(
        self,
        job_id: str,
        attempt: int,
        state: str,
        then: NextClaim,
        holder: str,
        token: str,
        admit: Sequence[Any] = (),
        **outcome: Unpack[Outcome],
    ) -> StoreSteps[ClaimAnswer]:
        """:meth:`finish`, then the next claim in the same round trip: a take
        (:meth:`take_steps`) for a draining worker, ``("claim", job_id)`` (:meth:`claim`)
        for one working through a batch. Each script is as atomic as when called alone.
        Returns what that next call returns. Only a worker's steps call it: a step
        (:class:`StoreRound`), run on a thread with ``scripts.now``."""
        _, answer = yield self.scripts.round(
            _ms(self.clock),
            ("finish", self.outcome_args(job_id, attempt, state, **outcome)),
            self._call_for(then, holder, token, admit),
        )
        return _answer_of(then, answer, token)

    def outcome_args(
        self, job_id: str, attempt: int, state: str, **outcome: Unpack[Outcome]
    ) -> tuple[Any, ...]:
        """finish.lua's arguments for an attempt's outcome (:class:`Outcome`)."""
        fields: dict[str, Any] = {
            "wamid": outcome.get("wamid"),
            "next_at": outcome.get("next_attempt_ms"),
            "timer_at": outcome.get("timer_ms"),  # when the tick looks (default: next_at)
            **(outcome.get("call") or {}),
        }
        if (gateway_ms := outcome.get("gateway_ms")) is not None:
            fields["gw_ms"] = round(gateway_ms)
        if outcome.get("fallback"):
            fields["fallback"] = 1
        if error := outcome.get("error"):
            fields.update(
                err_status=error.get("status"),
                err_code=error.get("code"),
                err_msg=(error.get("message") or "")[:500],
            )
        if outcome.get("ambiguous"):
            fields["ambiguous"] = True
        encoded = json.dumps({k: v for k, v in fields.items() if v is not None})
        return job_id, attempt, state, encoded, self._recheck_ms

    def refuse(
        self,
        job_id: str,
        *,
        to: str,
        from_phone_no: str,
        campaign_id: str,
        run: int,
        channel: str,
        message_type: str,
        reason: str,
    ) -> bool:
        """Record a bulk job that cannot be sent (refused at a campaign's fan-out) as
        ``failed`` with RefusedAtFanOut's code and ``reason``; False when it was recorded
        before."""
        result = self.scripts.call(
            "refuse",
            _ms(self.clock),
            job_id,
            to,
            from_phone_no,
            "bulk",
            campaign_id,
            run,
            channel,
            message_type,
            reason[:500],
            RefusedAtFanOut.code,
        )
        return int(result) == 1

    def unclaim(self, holder: str, token: str) -> bool:
        """Give back the claim ``holder`` made with ``token`` whose answer never arrived
        (Redis went away meanwhile): nothing was sent under it. True when the claim had
        been made (and is given back), False when it never happened."""
        return int(self.scripts.call("unclaim", _ms(self.clock), holder, token)) == 1

    def release(
        self,
        claim: Claim,
        delay_s: float,
        reason: str,
        *,
        park_for: str | None = None,
        park_set: str | None = None,
    ) -> bool:
        """Give the claim back (no attempt spent): ``retry_wait`` for ``delay_s``.
        ``park_for``: a paused number whose resume makes the job due at once;
        ``park_set``: another set of waiting jobs (a paused campaign's)."""
        result = self.scripts.call(
            "release",
            _ms(self.clock),
            claim.job_id,
            claim.attempt,
            int((self.clock() + delay_s) * 1000),
            reason,
            park_set or (schema.parked(park_for) if park_for else ""),
        )
        return int(result) == 1

    def apply_status(
        self,
        wamid: str,
        status: str,
        code: int | None = None,
        message: str = "",
        number: str | None = None,
        recipient: str | None = None,
        billing: Mapping[str, Any] | None = None,
    ) -> tuple[str, str | None]:
        """Apply a webhook's delivery status: (state now, job id), or ('parked', None)
        when the wamid is not known yet (it is applied when the send is recorded).
        ``billing``: the status's pricing and conversation (``Status.billing``), kept on
        the job and counted once per billable message."""
        result = self.scripts.call(
            "status",
            _ms(self.clock),
            wamid,
            status,
            "" if code is None else code,
            message[:500],
            number or "",
            recipient or "",
            OptedOut.suppression_reason if code in OptedOut.codes else "",
            json.dumps(billing, separators=(",", ":")) if billing else "",
        )
        job_id = result[1].decode()
        return result[0].decode(), job_id or None

    def tick(self, limit: int = 1000) -> TickResult:
        """Publish due retries and scheduled jobs; resolve lease-expired claims and
        unknown jobs whose webhook did not come."""
        result = self.scripts.call(
            "tick",
            _ms(self.clock),
            limit,
            self.settings.ambiguous_transactional,
            self.settings.ambiguous_bulk,
            self._recheck_ms,
        )
        return TickResult(*(int(n) for n in result))

    def recover(self, limit: int = 1000, sweep_every_s: float = 5.0) -> Recovered:
        """Recovery by liveness (recover.lua): dead workers' claims follow the lanes'
        policy, messages no live worker holds go back to their queues, and (at most every
        ``sweep_every_s`` across beats) queued jobs whose message was lost are published
        again."""
        with store_errors():
            sweep = bool(self.client.set(schema.SWEPT, 1, nx=True, px=int(sweep_every_s * 1000)))
        dead_after_ms = int(self.settings.worker_dead_after_s * 1000)
        result = self.scripts.call(
            "recover",
            _ms(self.clock),
            dead_after_ms,
            self.settings.ambiguous_transactional,
            self.settings.ambiguous_bulk,
            self._recheck_ms,
            schema.KOMBU_UNACKED,
            schema.KOMBU_UNACKED_INDEX,
            max(5000, int(self.settings.worker_heartbeat_s * 3000)),
            limit,
            "1" if sweep else "0",
        )
        dead, resent, held, restored, republished, waiting, returned = (int(n) for n in result)
        return Recovered(
            dead, resent, held, restored, republished, bool(waiting), claims_returned=returned
        )

    def trim(self, numbers: Sequence[str], every_s: float = 60.0) -> bool:
        """Drop index entries of jobs past the retention (the job hashes expire by
        themselves): the recent indexes, dead letters, and campaigns whose records have
        expired. At most once per ``every_s`` across every beat; True when it ran."""
        retention_ms = self.settings.job_retention_s * 1000
        cutoff = f"({_ms(self.clock) - retention_ms}"
        with store_errors():
            if not self.client.set(schema.TRIMMED, 1, nx=True, ex=max(1, int(every_s))):
                return False
            pipe = self.client.pipeline(transaction=False)
            for index in (
                schema.RECENT,
                schema.DEAD,
                *(schema.recent_for_number(n) for n in numbers),
            ):
                pipe.zremrangebyscore(index, "-inf", cutoff)
            pipe.zrange(schema.CAMPAIGNS, 0, 199)
            campaigns = cast(list[bytes], pipe.execute()[-1])
            if campaigns:
                pipe = self.client.pipeline(transaction=False)
                for campaign_id in campaigns:
                    pipe.exists(schema.campaign(campaign_id.decode()))
                gone = [c for c, alive in zip(campaigns, pipe.execute(), strict=True) if not alive]
                if gone:
                    self.client.zrem(schema.CAMPAIGNS, *gone)
        return True

    # --- reading -----------------------------------------------------------------------

    def get(self, job_id: str) -> JobRecord | None:
        with store_errors():
            raw = cast(dict[bytes, bytes], self.client.hgetall(schema.job(job_id)))
        return JobRecord.from_hash(job_id, raw) if raw else None

    def envelope(self, job_id: str) -> JobEnvelope | None:
        """The envelope the job was queued with (None for no such job, or one refused
        before it was queued)."""
        with store_errors():
            raw = cast(list[bytes | None], self.client.hmget(schema.job(job_id), *ENVELOPE_FIELDS))
        env, *columns = raw
        return envelope_of(job_id, env, columns) if env else None

    def by_wamid(self, wamid: str) -> JobRecord | None:
        with store_errors():
            job_id = cast(bytes | None, self.client.get(schema.wamid(wamid)))
        return self.get(job_id.decode()) if job_id else None

    def list(
        self,
        *,
        state: str | None = None,
        number: str | None = None,
        campaign: str | None = None,
        limit: int = 50,
    ) -> list[JobRecord]:
        """The newest records that :meth:`search` finds with these filters, without the
        page (the producer's and the tests' plain listing)."""
        where = JobFilter(state=state, number=number, campaign=campaign)
        return self.search(where, limit=limit).records

    def search(
        self,
        where: JobFilter,
        *,
        limit: int = 50,
        before_ms: int | None = None,
        scan_max: int | None = None,
    ) -> JobPage:
        """Jobs newest first, those ``where`` keeps; ``before_ms`` continues a listing (a
        page's ``next_before_ms``). The recent index is per number, not per recipient: a
        search by recipient (``where.to``) reads the newest jobs until ``limit`` match or
        ``scan_max`` were read, and the page says where it stopped so that a caller may
        read on."""
        wanted = {
            b"state": where.state.encode() if where.state else None,
            b"camp": where.campaign.encode() if where.campaign else None,
            b"to": where.to.encode() if where.to else None,
        }
        allowed = None if where.numbers is None else {n.encode() for n in where.numbers}
        index = schema.recent_for_number(where.number) if where.number else schema.RECENT
        found = JobPage([])
        upper: str | int = "+inf" if before_ms is None else f"({before_ms}"
        while len(found.records) < limit and (scan_max is None or found.scanned < scan_max):
            with store_errors():
                page = cast(
                    list[tuple[bytes, float]],
                    self.client.zrevrangebyscore(
                        index, upper, "-inf", start=0, num=max(limit * 2, 100), withscores=True
                    ),
                )
                if not page:
                    found.next_before_ms = None
                    break
                pipe = self.client.pipeline(transaction=False)
                for job_id, _ in page:
                    pipe.hgetall(schema.job(job_id.decode()))
                hashes = pipe.execute()
            for raw, (job_id, created_ms) in zip(hashes, page, strict=True):
                found.scanned += 1
                found.next_before_ms = int(created_ms)
                if not raw or any(v is not None and raw.get(k) != v for k, v in wanted.items()):
                    continue
                if allowed is not None and raw.get(b"from") not in allowed:
                    continue
                found.records.append(JobRecord.from_hash(job_id.decode(), raw))
                if len(found.records) == limit:
                    break
            upper = f"({found.next_before_ms}"
        return found

    def stats(self) -> dict[str, int]:
        with store_errors():
            raw = cast(dict[bytes, bytes], self.client.hgetall(schema.STATS))
        return {k.decode(): int(v) for k, v in raw.items()}

    def reject(self, job_id: str, reason: str) -> None:
        """Note a queue message that is not a job (published by another app by task name):
        there is nothing to record it under, so it goes to the events stream as
        ``rejected`` with the field and rule that refused it, and is counted."""
        with store_errors():
            pipe = self.client.pipeline()
            pipe.xadd(
                schema.EVENTS,
                {"job": job_id, "state": "rejected", "error": reason[:1000]},
                maxlen=self.settings.events_maxlen,
                approximate=True,
            )
            pipe.hincrby(schema.STATS, "rejected", 1)
            pipe.execute()

    def note_beat(self) -> None:
        """Beat's tick (every second) or its once-a-minute task ran: beat and a maintenance
        consumer are alive (metrics and status show how long ago)."""
        with store_errors():
            self.client.set(schema.BEAT_SEEN, self.clock())


def _answer_of(then: NextClaim, result: list[Any], token: str) -> ClaimAnswer:
    """What a claim of ``then``'s kind answered (claim.lua, take.lua)."""
    return _claim_of(result, then[1], token) if then[0] == "claim" else _taken(result, token)


def _taken(result: list[Any], token: str) -> Claim | str | None:
    """take.lua's answer: None for an empty queue or a message left to Celery's
    consumer, else as claim.lua's (then the admission made with it, the job id and the
    queue's backlog)."""
    if not result or int(result[0]) == 2:
        return None
    if int(result[0]) != 1:
        return _claim_of(result, "", token)
    return _claim_of(result, result[-2].decode(), token, backlog=int(result[-1]))


def _claim_of(result: list[Any], job_id: str, token: str, backlog: int = 0) -> Claim | str:
    """A claim script's answer: {1, attempt, env, window, suppressed, columns, admission?,
    ...} is a Claim (admission: admit.lua's answer when the script admitted the job, a
    list; 0 or absent when not; ``backlog``: take.lua's count of the messages left);
    {0, reason} is the reason not to send."""
    if int(result[0]) != 1:
        return str(result[1].decode())
    attempt, env, window, suppressed, columns = result[1:6]
    admission = result[6] if len(result) > 6 and isinstance(result[6], list) else None
    return Claim(
        job_id,
        int(attempt),
        env.decode(),
        tuple(None if value is None else value.decode() for value in columns),
        window.decode(),
        suppressed.decode(),
        token,
        admission,
        backlog,
    )
