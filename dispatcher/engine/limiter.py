"""Global rate limits, held in Redis across every worker process and machine.

Celery's ``rate_limit`` counts per worker process, and ``limits[redis]`` pins
``redis<8``; so admission is our own: one Lua script (``lua/admit.lua``, GCRA with
reservation) decides over every limit that applies to a job at once: the API key per
minute and per hour, the sending number per second, and the (number, recipient) pair;
bulk jobs also meet a smaller share of the key and number limits, so that the rest is
always there for the transactional lane. Meta's messaging limit (unique recipients of
business-initiated sends per business portfolio in a moving 24 hours) is decided in the
same script, with the same reserve for the transactional lane. Cooldowns (after a 429,
130429, 131056) and pauses (131048) are Redis keys every worker's admission reads.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, cast

import redis

from config import ApiKeyConfig, Settings
from dispatcher.engine.throttle import BUCKET_MS, Throttle
from dispatcher.job.queues import queue_name
from dispatcher.ledger import schema
from dispatcher.ledger.connection import store_errors
from dispatcher.ledger.reach import MESSAGING_WINDOW_S, lane_budget
from dispatcher.ledger.scripts import (
    FunctionCall,
    StoreRound,
    StoreSteps,
    at_once,
    ledger_library,
)

Status = Literal["ok", "wait", "paused"]
# What a wait is for: the throttle holding back, a limit's slot too far off, Meta's
# messaging limit, a paused number.
WaitReason = Literal["", "throttle", "limits", "reach", "paused"]


class Routed(Protocol):
    """What admission reads of a job: a JobEnvelope, or the plan of a queue's jobs
    (:meth:`Limiter.queue_plan`)."""

    @property
    def id(self) -> str: ...
    @property
    def channel(self) -> str: ...
    @property
    def to(self) -> str: ...
    @property
    def from_phone_no(self) -> str | None: ...
    @property
    def lane(self) -> str: ...
    @property
    def campaign_id(self) -> str | None: ...
    @property
    def campaign_rate(self) -> float | None: ...


# What take.lua puts in a planned admission's values: the job's recipient, its attempt and
# its id (admit.lua: admit_claimed).
RECIPIENT, ATTEMPT, JOB = "\x01", "\x02", "\x03"
PLACEHOLDERS = (RECIPIENT, ATTEMPT, JOB)
MAX_PLANS = 1024  # plans a limiter keeps (one a queue, one a campaign's number and lane)


class _Draw(float):
    """A uniform draw's place in a plan (queue_plan draws it anew each time)."""


@dataclass(frozen=True)
class _Planned:
    """Any job of one transactional Cloud queue, or like one job but for its recipient,
    as its admission is planned (:meth:`Limiter.queue_plan`, :meth:`Limiter.plan_like`)."""

    from_phone_no: str
    id: str = JOB
    channel: str = "cloud"
    to: str = RECIPIENT
    lane: str = "transactional"
    campaign_id: str | None = None
    campaign_rate: float | None = None


def _number_used(envelope: Routed) -> str | None:
    """The sending number whose limits a job spends: a message's own; None for a contact
    write (it rides its key's queue but sends from no number) and a session-only QR job."""
    return None if envelope.channel == "contacts" else envelope.from_phone_no


def _pause_scope(envelope: Routed) -> str:
    """What pausing stops this job: its number, ``contacts`` or QR ``sessions``."""
    return "contacts" if envelope.channel == "contacts" else envelope.from_phone_no or "sessions"


@dataclass(frozen=True)
class Limit:
    """One GCRA limit: ``rate`` events per ``period_s``, ``burst`` of them at once."""

    name: str
    rate: float
    period_s: float
    burst: int = 1

    @property
    def interval_ms(self) -> float:
        return self.period_s * 1000.0 / self.rate

    @property
    def tolerance_ms(self) -> float:
        return self.interval_ms * (self.burst - 1)


@dataclass(frozen=True)
class Admission:
    """``ok``: go after ``delay_s`` (the slot is reserved); ``wait``: nothing was charged,
    ask again after ``delay_s``; ``paused``: the sending number is paused."""

    status: Status
    delay_s: float
    probe: bool = False  # let through as the adaptive throttle's probe of a gateway in trouble
    reason: WaitReason = ""
    messaging_limit: MessagingLimit | None = None  # the one it waits for (reason "reach")


@dataclass(frozen=True)
class MessagingLimit:
    """Meta's messaging limit as it applies to one job: the portfolio's tier and the
    share of it the job's lane may use (recipients in a moving 24 hours)."""

    portfolio: str
    tier: int
    budget: int

    @property
    def key(self) -> str:
        return schema.reach(self.portfolio)


class Limiter:
    """Admission for jobs, cooldowns and pauses. Thread-safe."""

    def __init__(
        self, client: redis.Redis, settings: Settings, clock: Callable[[], float] | None = None
    ) -> None:
        """``clock``: seconds since the epoch; None (as shipped) takes Redis's own TIME, one
        clock for every host. Tests pass a simulated one."""
        self.client = client
        self.settings = settings
        self.clock = clock
        self._admit = ledger_library().function("admit")
        # (number, channel) -> the name of the key that sends it (Settings.senders)
        self._key_of = {route: key.name for route, key in settings.senders().items()}
        self._key_by_name = {k.name: k for k in settings.keys}
        self._qr_key = next((k.name for k in settings.keys if "qr" in k.channels), None)
        self._portfolio_of = settings.portfolio_by_number()  # every admission asks
        # Transactional Cloud queues -> their number: the queues queue_plan plans for.
        self._planned_numbers = {
            queue_name("cloud", number, "transactional"): number
            for number, channel in self._key_of
            if channel == "cloud"
        }
        # Plans by queue (queue_plan), or by (number, lane, campaign, rate) (plan_like).
        self._plans: dict[Hashable, tuple[tuple[Any, ...], tuple[int, ...]]] = {}
        self.throttle = Throttle.from_settings(settings)

    # --- which limits apply ----------------------------------------------------------------

    def key_name(self, envelope: Routed) -> str | None:
        if envelope.from_phone_no is not None:
            return self._key_of.get((envelope.from_phone_no, envelope.channel))
        return self._qr_key

    def limits_for(self, envelope: Routed) -> list[Limit]:
        """Every limit the job must pass, with names that are their Redis schema."""
        s = self.settings
        limits: list[Limit] = []
        bulk_share = s.bulk_share
        bulk = envelope.lane == "bulk"
        key = self._key_config(envelope)
        if key is not None:
            for quota, period_s, label in (
                (key.per_minute, 60.0, "m"),
                (key.per_hour, 3600.0, "h"),
            ):
                if quota is None:
                    continue
                rate = s.usable_quota(quota)
                limits.append(Limit(f"key:{key.name}:{label}", rate, period_s))
                if bulk and s.transactional_reserve:
                    limits.append(
                        Limit(f"key:{key.name}:{label}:bulk", rate * bulk_share, period_s)
                    )
        number = _number_used(envelope)
        if number is not None:
            rate = s.usable_number_rate_per_s(number)
            burst = max(1, int(rate / 10))
            limits.append(Limit(f"num:{number}", rate, 1.0, burst))
            if bulk and s.transactional_reserve:
                limits.append(Limit(f"num:{number}:bulk", rate * bulk_share, 1.0, burst))
            if envelope.campaign_id and envelope.campaign_rate:
                limits.append(Limit(f"camp:{envelope.campaign_id}", envelope.campaign_rate, 1.0))
            if envelope.channel == "cloud" and s.pair_interval_s > 0:
                limits.append(
                    Limit(f"pair:{number}:{envelope.to}", 1.0, s.pair_interval_s, s.pair_burst)
                )
        return limits

    def messaging_limit_for(self, envelope: Routed) -> MessagingLimit | None:
        """The messaging limit a Cloud send meets (None: no portfolio with a tier)."""
        if envelope.channel != "cloud" or envelope.from_phone_no is None:
            return None
        portfolio = self._portfolio_of.get(envelope.from_phone_no)
        if portfolio is None or portfolio.tier == "unlimited":
            return None
        budget = lane_budget(portfolio.tier, envelope.lane, self.settings.transactional_reserve)
        return MessagingLimit(portfolio.name, portfolio.tier, budget)

    def cooldowns_for(self, envelope: Routed) -> list[str]:
        names = []
        key_name = self.key_name(envelope)
        if key_name is not None:
            names.append(f"key:{key_name}")
        number = _number_used(envelope)
        if number is not None:
            names.append(f"num:{number}")
            names.append(f"pair:{number}:{envelope.to}")
        return names

    def refunds(self, envelope: Routed) -> list[tuple[str, float]]:
        """(Redis key, interval in ms) of the limits a call the gateway did not take
        gives back: Meta's, the number's throughput and the recipient pair's (Meta counts
        messages that reach it; one the gateway answered 5xx or 429 never did, and its
        retry should not wait for a slot the failed call used). The key's quotas are the
        gateway's own and stay spent."""
        return [
            (schema.rate(limit.name), limit.interval_ms)
            for limit in self.limits_for(envelope)
            if limit.name.startswith(("pair:", "num:"))
        ]

    def throttle_scopes(self, envelope: Routed) -> list[str]:
        """The adaptive throttle's scopes of this job's calls (key, number)."""
        return self.throttle.scopes(self.key_name(envelope), _number_used(envelope))

    def _key_config(self, envelope: Routed) -> ApiKeyConfig | None:
        name = self.key_name(envelope)
        return None if name is None else self._key_by_name.get(name)

    # --- admission -----------------------------------------------------------------------

    def admit_steps(
        self,
        envelope: Routed,
        *,
        max_wait_s: float | None = None,
        now_ms: float | None = None,
        attempt: int | None = None,
    ) -> StoreSteps[Admission]:
        """Reserve a slot under every limit, or say how long to wait (nothing charged).
        ``attempt``: the claim's attempt; when admitted, the job is marked as going to
        the gateway under it (``go``), which recovery reads. One round trip (a step:
        :class:`StoreRound`); :meth:`admit` makes it at once."""
        keys, args = self._admission(envelope, max_wait_s, now_ms, attempt)
        [answer] = yield StoreRound(self.client, (FunctionCall(self._admit, keys, args),))
        return self.admission_of(envelope, answer)

    admit = at_once(admit_steps)

    def queue_plan(self, queue: str) -> tuple[Any, ...]:
        """The admission a claim script makes with the claim of a job from ``queue``
        (``take.lua`` taking its next message, ``claim.lua`` the job of a message Celery
        delivered from it), so that a message costs one round trip, not two: admit.lua's
        keys and arguments for any job of the queue, the job's recipient, attempt and id
        left for the script to fill (``RECIPIENT``, ``ATTEMPT``, ``JOB``; admit.lua:
        admit_claimed). Only a transactional Cloud queue's jobs are planned for (their
        limits differ only by recipient); () for any other queue: its jobs are admitted
        as they are sent (:meth:`admit_steps`), or planned for like a job of theirs
        (:meth:`plan_like`)."""
        number = self._planned_numbers.get(queue)
        return () if number is None else self._plan(queue, lambda: _Planned(number))

    def plan_like(self, envelope: Routed) -> tuple[Any, ...]:
        """:meth:`queue_plan` for any job like ``envelope`` but for its recipient: same
        number, lane and campaign (admit_claimed checks these; a job that differs is
        admitted as it is sent) and so the same campaign rate (a campaign's spec, which
        does not change). A campaign batch's jobs are such jobs: each claims the next
        with its outcome, admitted in that round trip (at 3,100 msg/s, 0.89 admission
        scripts of their own a message before, none now; the workers' CPU 0.32 ms a
        message against 0.335). () for a job not sent from a Cloud number."""
        number = envelope.from_phone_no
        if envelope.channel != "cloud" or number is None:
            return ()
        lane, campaign_id, rate = envelope.lane, envelope.campaign_id, envelope.campaign_rate
        if len(self._plans) > MAX_PLANS:  # campaigns come and go
            self._plans.clear()
        return self._plan(
            (number, lane, campaign_id, rate),
            lambda: _Planned(number, lane=lane, campaign_id=campaign_id, campaign_rate=rate),
        )

    def _plan(self, known_as: Hashable, make: Callable[[], _Planned]) -> tuple[Any, ...]:
        """The plan known as ``known_as`` (``make`` builds its job when it is not
        cached), with fresh draws."""
        cached = self._plans.get(known_as)
        if cached is None:
            planned = make()
            keys, args = self._admission(planned, None, None, ATTEMPT, _Draw)
            values = (*keys, *args)
            marked = ",".join(
                str(at)
                for at, value in enumerate(values, 1)
                if isinstance(value, str) and any(mark in value for mark in PLACEHOLDERS)
            )
            # What a job must be for the plan to fit it (admit.lua: admit_claimed).
            fits = (planned.from_phone_no, planned.channel, planned.lane, planned.campaign_id or "")
            plan = (*fits, len(keys), marked, *values)
            draws = tuple(at for at, value in enumerate(plan) if isinstance(value, _Draw))
            if self.clock is None:  # (a simulated clock is read at each plan)
                self._plans[known_as] = plan, draws
        else:
            plan, draws = cached
        if not draws:
            return plan
        fresh = list(plan)
        for at in draws:  # the throttle's and the messaging limit's draws, new each time
            fresh[at] = random.random()  # noqa: S311
        return tuple(fresh)

    def admission_of(self, envelope: Routed, answer: list[Any]) -> Admission:
        """admit.lua's answer, for ``envelope``'s job."""
        status, delay, probe, reason = answer
        why = cast(WaitReason, reason.decode())
        return Admission(
            cast(Status, status.decode()),
            float(delay) / 1000.0,
            probe == 1,
            why,
            self.messaging_limit_for(envelope) if why == "reach" else None,
        )

    def _admission(
        self,
        envelope: Routed,
        max_wait_s: float | None,
        now_ms: float | None,
        attempt: int | str | None,
        draw: Callable[[], float] = random.random,
    ) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        """admit.lua's KEYS and ARGV for ``envelope``'s job (``draw``: its uniform draws
        in [0, 1))."""
        limits = self.limits_for(envelope)
        cooldowns = self.cooldowns_for(envelope)
        # A paused number stops its messages; contact writes are not messages.
        paused = schema.paused(_pause_scope(envelope))
        wait_ms = self.settings.limiter_max_sleep_s if max_wait_s is None else max_wait_s
        if now_ms is None and self.clock is not None:
            now_ms = self.clock() * 1000.0
        args: list[str | float | int] = [
            len(limits),
            len(cooldowns),
            wait_ms * 1000.0,
            "" if now_ms is None else now_ms,
        ]
        for limit in limits:
            args.extend((limit.interval_ms, limit.tolerance_ms))
        args.append(envelope.from_phone_no or "sessions")
        scopes = self.throttle_scopes(envelope)
        throttle_keys = [*scopes, scopes[0] + ":probe"] if scopes else []
        t = self.throttle
        args.extend((len(scopes), t.factor, t.min_calls, BUCKET_MS, t.buckets))
        args.extend((draw(), draw(), t.probe_interval_ms))
        # Admitted under a claim: the job is marked as going to the gateway now, so a
        # claim lost before this point is known not to have been sent (not ambiguous).
        args.append("" if attempt is None else attempt)
        job_key = [schema.job(envelope.id)] if attempt is not None else []
        reach = self.messaging_limit_for(envelope)
        reach_keys = []
        if reach is not None:
            assert envelope.from_phone_no is not None
            reach_keys = [reach.key, schema.window(envelope.from_phone_no, envelope.to)]
            args.extend((1, reach.budget, envelope.to, MESSAGING_WINDOW_S * 1000))
            args.append(draw())
        keys = (
            *(schema.rate(limit.name) for limit in limits),
            *(schema.cooldown(c) for c in cooldowns),
            paused,
            schema.metric("waits"),
            schema.metric("waited"),
            *reach_keys,
            *throttle_keys,
            *job_key,
        )
        return keys, tuple(args)

    # --- cooldowns and pauses -----------------------------------------------------------

    def cool_down(self, name: str, seconds: float) -> None:
        """Make every worker wait ``seconds`` before using ``name`` (``key:<name>``,
        ``num:<number>``, ``pair:<number>:<to>``); a longer cooldown is never shortened."""
        ms = max(1, math.ceil(seconds * 1000))
        key = schema.cooldown(name)
        with store_errors():
            pipe = self.client.pipeline()
            pipe.set(key, ms, px=ms, nx=True)  # a new cooldown
            pipe.hincrby(schema.metric("cooldowns"), name.split(":", 1)[0], 1)
            pipe.pexpire(key, ms, gt=True)  # or a longer one than there is
            pipe.execute()

    def pause(self, number: str, reason: str) -> bool:
        """Pause a sending number until resumed; True if it was not paused already."""
        with store_errors():
            fresh = bool(
                self.client.set(
                    schema.paused(number),
                    json.dumps({"reason": reason, "at": time.time()}),
                    nx=True,
                )
            )
            if fresh:
                self.client.xadd(
                    schema.EVENTS,
                    {"job": "", "state": "paused", "number": number, "alert": reason},
                    maxlen=self.settings.events_maxlen,
                    approximate=True,
                )
        return fresh

    def resume(self, number: str) -> int:
        """Resume a paused number; its parked jobs become due now. Returns how many."""
        now_ms = int(time.time() * 1000)
        with store_errors():
            self.client.delete(schema.paused(number))
            parked = cast(set[bytes], self.client.smembers(schema.parked(number)))
            pipe = self.client.pipeline()
            for job_id in parked:
                pipe.zadd(schema.TIMERS, {job_id: now_ms}, xx=True)
            pipe.delete(schema.parked(number))
            pipe.xadd(
                schema.EVENTS,
                {"job": "", "state": "resumed", "number": number},
                maxlen=self.settings.events_maxlen,
                approximate=True,
            )
            pipe.execute()
        return len(parked)

    def paused(self) -> dict[str, dict[str, object]]:
        """Paused numbers and why."""
        out = {}
        with store_errors():
            for number in self.settings.from_numbers:
                raw = cast(bytes | None, self.client.get(schema.paused(number)))
                if raw is not None:
                    out[number] = json.loads(raw)
        return out
