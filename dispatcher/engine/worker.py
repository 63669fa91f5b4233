"""The life of a job inside a worker: claim, admit, send, record. Celery-free.

``tasks/`` calls :meth:`Worker.handle` for each job message; everything a test would
want to drive without a broker lives here.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, Unpack

import redis
from pydantic import ValidationError

from config import Settings
from dispatcher.engine.clients import Clients
from dispatcher.engine.heartbeat import beat_once, worker_identity
from dispatcher.engine.limiter import Admission, Limiter
from dispatcher.engine.retry import decide, error_fields
from dispatcher.engine.steps import GatewayCall, Pause, Steps, run
from dispatcher.errors import (
    Cooldown,
    GatewayError,
    InvalidAtRun,
    InvalidRequest,
    MarketingCapped,
    NoKeyBound,
    NotSent,
    OptedOut,
    OutsideWindow,
    StoreUnavailable,
    Suppressed,
    WindowClosed,
)
from dispatcher.gateway import SendRequest
from dispatcher.gateway.cloud import CLOUD_SENDS, CloudSend
from dispatcher.gateway.kinds import ContactRequest
from dispatcher.gateway.validation import problems_of
from dispatcher.job.envelope import JobEnvelope, is_job_id
from dispatcher.job.queues import is_transactional
from dispatcher.ledger import schema
from dispatcher.ledger.connection import connect, store_errors
from dispatcher.ledger.jobs import Claim, ClaimAnswer, Ledger, NextClaim, Outcome
from dispatcher.ledger.templates import StoppedTemplates, Templates
from dispatcher.ledger.windows import Windows
from dispatcher.telemetry.logs import job_fields
from dispatcher.telemetry.pages import report_if_it_pages
from dispatcher.telemetry.sentry import alert

log = logging.getLogger("dispatcher.worker")

INLINE_RETRIES = 8  # short retries a thread makes itself before leaving them to the tick
INLINE_TIMER_GRACE_S = 5.0  # the tick takes over such a retry this late (the thread died)
_T = TypeVar("_T")
_NOT_TAKEN = object()  # the thread's next claim was not made with the last outcome
_NO_SUCH_JOB = "job_id: no job with this id in the ledger"


@dataclass(slots=True)
class _Turn:
    """What one attempt (and its short retries) carries between its steps: the claim to
    make with its outcome (its admission planned like ``like``, the job sent: a batch's
    next job) and that claim's answer, a short retry it makes itself, a probe the gateway
    failed. Held in a context variable: each thread, and each task of the event loop, has
    its own."""

    then: NextClaim | None = None
    like: JobEnvelope | None = None
    taken: Any = _NOT_TAKEN
    retry_in_s: float | None = None
    probe_failed: bool = False


_turn: contextvars.ContextVar[_Turn] = contextvars.ContextVar("waapi_turn")


@dataclass(frozen=True, slots=True)
class Drained:
    """What a drain did: how many messages it took, and whether it stopped on its budget
    (``WORKER_DRAIN_JOBS``, ``WORKER_DRAIN_S``) rather than for want of messages, so
    that more may be waiting."""

    taken: int
    spent: bool = False


def _needs_window(envelope: JobEnvelope) -> bool:
    """Free-form Cloud messages need the 24-hour window; templates (and QR) do not."""
    if envelope.channel != "cloud" or envelope.type == "template":
        return False
    return not (envelope.type == "send" and envelope.payload.get("type") == "template")


def _fallback_request(envelope: JobEnvelope) -> CloudSend:
    """The job's fallback template, to the same recipient from the same number."""
    assert envelope.fallback_template is not None
    fields = envelope.fallback_template.model_dump(exclude_none=True)
    return CLOUD_SENDS["template"].model_validate(
        {"to": envelope.to, "from_phone_no": envelope.from_phone_no, **fields}
    )


class Worker:
    """Processes job envelopes. Thread-safe; one per worker process."""

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        clients: Clients,
        limiter: Limiter,
        *,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_number_paused: Callable[[str, str], object] | None = None,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.clients = clients
        self.limiter = limiter
        self.windows = Windows(ledger.client)
        self.stopped_templates = StoppedTemplates(Templates(ledger.client))
        # Called (number, reason) when the gateway pauses a number (SpamLimited): the
        # process's campaigns stop using it.
        self.on_number_paused = on_number_paused
        self.rng = rng or random.Random()  # noqa: S311 - backoff jitter, not secrets
        self.sleep = sleep
        self._rng_lock = threading.Lock()
        # Claims name their holder: this process, as it heartbeats (dispatcher.heartbeat).
        self.identity = worker_identity()
        self._tokens = itertools.count(1)
        self._registered = False
        self._uncertain: list[str] = []  # tokens of claims whose answer was lost
        self._uncertain_lock = threading.Lock()
        # The transactional queues this process consumes (serve), and their group's digest.
        self._serving: tuple[str, ...] = ()
        self._served: str | None = None
        # The last job claimed from each bulk queue's batches: the next batch's first claims
        # plan their admissions like it (batch).
        self._batch_like: dict[str, JobEnvelope] = {}

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        concurrency: int | None = None,
        *,
        client: redis.Redis | None = None,
        on_number_paused: Callable[[str, str], object] | None = None,
    ) -> Worker:
        threads = concurrency or settings.worker_concurrency
        client = client or cls.connect(settings, threads)
        return cls(
            settings,
            Ledger(client, settings),
            Clients(settings, threads),
            Limiter(client, settings),
            on_number_paused=on_number_paused,
        )

    @staticmethod
    def connect(settings: Settings, concurrency: int | None = None) -> redis.Redis:
        """The Redis client a worker of ``concurrency`` threads needs (its pool)."""
        threads = concurrency or settings.worker_concurrency
        return connect(settings, max_connections=2 * threads + 8)

    def close(self) -> None:
        self.clients.close()

    # --- the life of one job -------------------------------------------------------------

    def handle(self, job: Any, job_id: Any = None) -> str:
        """Process one message: an envelope (``job``, as other apps publish it) or the id
        of a job the ledger holds (``job_id``, the dispatcher's own messages); returns
        the state it left the job in (or why not)."""
        return self.run(self.handle_steps(job, job_id))

    def handle_steps(self, job: Any, job_id: Any = None, queue: str | None = None) -> Steps[str]:
        """:meth:`handle` as steps, for the send loop (``queue``: the one Celery delivered
        the message from; its job is admitted with its claim when it may be)."""
        if job_id is not None:
            return (yield from self._handle_id_steps(job, job_id, queue))
        try:
            envelope = JobEnvelope.model_validate(job)
        except ValidationError as exc:
            problems = "; ".join(str(p) for p in problems_of(exc, prefix="job"))
        else:
            return (yield from self._handle_steps(envelope))
        return self.refuse(job, problems)  # outside except: no pydantic context (inputs)

    def _handle_id_steps(self, job: Any, job_id: Any, queue: str | None = None) -> Steps[str]:
        """A message naming its job by id: the envelope is the ledger's, read by the
        claim. An id the ledger does not know is refused and recorded (its record is
        gone: a Redis restarted empty keeps no message either, so this is a bug or a
        message published by hand)."""
        if job is not None:
            return self.refuse(None, "job, job_id: give one of them, not both")
        if not is_job_id(job_id):
            return self.refuse(None, "job_id: must be a job id (1-64 of A-Z a-z 0-9 _ . : -)")
        claim = yield from self._claim(("claim", job_id), queue)
        if claim == "missing":
            return self.refuse({"id": job_id}, _NO_SUCH_JOB)
        if not isinstance(claim, Claim):
            return claim or "missing"  # a duplicate delivery, or not due: nothing to do
        envelope = claim.envelope()
        return (yield from self._attempt_then(envelope, claim, None))[0]

    def run(self, steps: Steps[_T]) -> _T:
        """Drive the worker's steps on this thread (:mod:`dispatcher.engine.steps`)."""
        return run(steps, self.sleep)

    def _handle_steps(self, envelope: JobEnvelope) -> Steps[str]:
        claim = yield from self._claim(("claim", envelope.id))
        if claim == "missing":  # published by another app straight to the queue
            self.ledger.enqueue([envelope], mode="none")
            claim = yield from self._claim(("claim", envelope.id))
        if not isinstance(claim, Claim):
            return claim or "missing"  # a duplicate delivery, or not due: nothing to do
        return (yield from self._attempt_then(envelope, claim, None))[0]

    def _claim(
        self, then: NextClaim, queue: str | None = None, like: JobEnvelope | None = None
    ) -> Steps[ClaimAnswer]:
        """Claim (a job, or the next message of a queue: ``Ledger.take_steps``) as this
        worker.
        When Redis goes away mid-call the claim may or may not have been made: its token
        is kept, and the claim given back once Redis answers (:meth:`settle_uncertain`),
        instead of waiting out its lease as an ambiguous send it never was."""
        if not self._registered:
            with store_errors():  # findable by recovery from its first claim on
                beat_once(self.ledger.client, self.identity, (), ttl_s=0)
            self._registered = True
        token = str(next(self._tokens))
        admit = self._admission_plan(then, queue, like)
        try:
            return (yield from self.ledger.take_steps(then, self.identity, token, admit))
        except StoreUnavailable:
            self._give_back_later(token)
            raise

    def _admission_plan(
        self, then: NextClaim, queue: str | None = None, like: JobEnvelope | None = None
    ) -> tuple[Any, ...]:
        """The admission the claim ``then`` makes with it: a take's, planned for the
        queue it takes from (``Limiter.queue_plan``); a claim's, for the queue Celery
        delivered its message from (``queue``), or like the job ``like`` (a batch's last:
        ``Limiter.plan_like``). None while Meta has stopped a template: a job of a stopped
        template is held, not sent, and a slot reserved for it would be spent for
        nothing."""
        kind, subject = then[0], then[1]
        planned = subject if kind == "take" else queue
        if planned is None and like is None:
            return ()
        with self._best_effort("template status"):
            if not self.stopped_templates.any_stopped():
                if planned is not None:
                    return self.limiter.queue_plan(planned)
                assert like is not None
                return self.limiter.plan_like(like)
        return ()

    def _give_back_later(self, token: str) -> None:
        with self._uncertain_lock:
            self._uncertain.append(token)

    @contextlib.contextmanager
    def _before_the_call(self, claim: Claim) -> Iterator[None]:
        """Redis going away between the claim and the gateway call (admission, a release)
        leaves a claim under which nothing was sent: it is given back once Redis answers,
        rather than held until its lease runs out."""
        try:
            yield
        except StoreUnavailable:
            self._give_back_later(claim.token)
            raise

    def serve(self, queues: Iterable[str]) -> None:
        """The queues this process consumes (its entry point says so once Celery
        consumes them): a draining thread whose queue is empty goes on with the
        transactional ones of these that hold messages (:meth:`drain`)."""
        self._serving = tuple(q for q in queues if is_transactional(q))
        if self._serving:
            with self._best_effort("served queues"):  # else from the next heartbeat on
                self._served = self.ledger.serve(self._serving)

    def after_heartbeat(self) -> None:
        """After each heartbeat that reached Redis: claims whose answer was lost are
        given back, and the served queues are said again (kept, or restored after a
        Redis that restarted empty)."""
        self.settle_uncertain()
        if self._serving:
            self._served = self.ledger.serve(self._serving)

    def settle_uncertain(self) -> int:
        """Give back claims whose answer was lost; returns how many were made (and so
        given back). Called after each heartbeat that reached Redis."""
        with self._uncertain_lock:
            tokens, self._uncertain = self._uncertain, []
        given_back = 0
        for n, token in enumerate(tokens):
            try:
                given_back += self.ledger.unclaim(self.identity, token)
            except StoreUnavailable:
                with self._uncertain_lock:
                    self._uncertain.extend(tokens[n:])
                break
        if given_back:
            log.warning("gave back %d claims whose answer was lost to a Redis outage", given_back)
        return given_back

    def drain(self, queue: str, go_on: Callable[[int], bool] | None = None) -> Steps[Drained]:
        """Send what else waits on a busy transactional queue, without a Celery delivery
        per message: take each message and claim its job in one step (take.lua); when
        the queue is empty, go on with the other transactional queues this process
        serves that hold messages (:meth:`serve`), until none does or the budget
        (``WORKER_DRAIN_JOBS``, ``WORKER_DRAIN_S``) is spent. Many numbers with a few
        messages each then cost no Celery delivery (a BRPOP over every queue) apiece.
        ``go_on`` is asked after each message taken, with how many messages its queue
        still holds, whether to take more (the send loop stopping says no; while a
        backlog is left it adds a lane). Steps, driven by the send loop
        (:mod:`dispatcher.engine.loop`)."""
        budget = self.settings.worker_drain_jobs
        deadline = time.monotonic() + self.settings.worker_drain_s
        taken = 0
        if budget <= 0 or time.monotonic() >= deadline:
            return Drained(taken)
        # Its queue first, then the other queues this process serves (in the same call).
        source: NextClaim = ("take", queue, self._served or "")
        claim = yield from self._claim(source)
        within = True  # the budget is not spent
        while claim is not None:
            taken += 1
            within = taken < budget and time.monotonic() < deadline
            backlog = claim.backlog if isinstance(claim, Claim) else 1  # 1: not known
            more = within and (go_on is None or go_on(backlog))
            answer: Any = _NOT_TAKEN
            if isinstance(claim, Claim):  # sent, it records its outcome and takes the next
                envelope = claim.envelope()
                then = source if more else None
                _, answer = yield from self._attempt_then(envelope, claim, then)
            if not more:
                break
            claim = answer if answer is not _NOT_TAKEN else (yield from self._claim(source))
        return Drained(taken, spent=not within)

    def refuse_batch(self) -> str:
        return self.refuse(None, "jobs: must be a list of job ids or envelopes")

    def batch(
        self, jobs: list[Any], lanes: int, queue: str = ""
    ) -> tuple[list[str], list[Steps[None]]]:
        """A batch's states (filled in as its jobs are done) and up to ``lanes`` lanes
        that do them, to run at once. Each entry is a job's id (the dispatcher's own
        batches: its envelope is read by the claim) or its envelope (as other apps may
        publish). Each lane takes the batch's next job as it is free; a job it has
        sent records its outcome and claims the lane's next job in one round trip. Each
        claim makes its job's admission with it, planned like the lane's last job (or
        the last job of a batch from ``queue``, the queue Celery delivered it from): a
        job unlike it is admitted as it is sent."""
        states = [""] * len(jobs)
        pending = iter(enumerate(jobs))
        lock = threading.Lock()

        def next_job() -> tuple[int, str | None, JobEnvelope | None] | None:
            """The next entry: its index, its job id and its envelope (when it carries
            one); no id when it is neither (refused by :meth:`handle_steps`)."""
            with lock:
                item = next(pending, None)
            if item is None:
                return None
            index, job = item
            if isinstance(job, str):
                return index, job if is_job_id(job) else None, None
            try:
                envelope = JobEnvelope.model_validate(job)
            except ValidationError:
                return index, None, None
            return index, envelope.id, envelope

        def work() -> Steps[None]:
            item = next_job()
            answer: Any = _NOT_TAKEN
            while item is not None:
                index, job_id, envelope = item
                following = next_job()
                if job_id is None:
                    job, named = jobs[index], None
                    if isinstance(job, str):
                        job, named = None, job
                    states[index] = yield from self.handle_steps(job, named)
                    item, answer = following, _NOT_TAKEN
                    continue
                if answer is _NOT_TAKEN:  # else claimed with the last outcome
                    like = self._batch_like.get(queue)
                    answer = yield from self._claim(("claim", job_id), like=like)
                claim = answer
                if claim == "missing":
                    if envelope is not None:  # another app's job: recorded, then sent
                        states[index] = yield from self._handle_steps(envelope)
                    else:
                        states[index] = self.refuse({"id": job_id}, _NO_SUCH_JOB)
                    item, answer = following, _NOT_TAKEN
                    continue
                then: NextClaim | None = None  # the following job, claimed with this outcome
                if following is not None and following[1] is not None:
                    then = ("claim", following[1])
                if isinstance(claim, Claim):
                    if envelope is None:
                        envelope = claim.envelope()
                    if queue:
                        self._batch_like[queue] = envelope
                    states[index], answer = yield from self._attempt_then(envelope, claim, then)
                else:
                    states[index], answer = claim or "missing", _NOT_TAKEN
                item = following

        return states, [work() for _ in range(min(len(jobs), lanes))]

    def refuse(self, job: Any, problems: str) -> str:
        """A message that is not a job: nothing is sent; the refusal is recorded (never a
        silent drop) under the job's id when it has a usable one. Values are not logged."""
        raw_id = job.get("id") if isinstance(job, Mapping) else None
        job_id = raw_id[:64] if isinstance(raw_id, str) and raw_id.isprintable() else ""
        log.error("refused a message that is not a valid job %s: %s", job_id or "-", problems)
        self.ledger.reject(job_id, problems)
        return "rejected"

    def _attempt_then(
        self, envelope: JobEnvelope, claim: Claim, then: NextClaim | None
    ) -> Steps[tuple[str, Any]]:
        """:meth:`_attempt`; when the job is sent and ``then`` names the thread's next
        claim (Ledger.finish_then), that claim is made with the outcome, in its round
        trip. Returns the state and that claim's answer (``_NOT_TAKEN``: not made)."""
        turn = _Turn(then, envelope)
        reset = _turn.set(turn)
        try:
            state = yield from self._attempt(envelope, claim)
        finally:
            _turn.reset(reset)
        return state, turn.taken

    def _attempt(self, envelope: JobEnvelope, claim: Claim) -> Steps[str]:
        """An attempt, and the short retries after a gateway in trouble: a retry due
        within ``LIMITER_MAX_SLEEP_S`` is slept here and claimed again (an attempt of its
        own, through admission like any other), not sent round through beat's tick; a
        longer one waits in the ledger. A worker that dies meanwhile leaves the job in
        ``retry_wait``, where the tick finds it."""
        turn = _turn.get()
        state = yield from self._attempt_once(envelope, claim)
        for _ in range(INLINE_RETRIES):
            retry_in_s, turn.retry_in_s = turn.retry_in_s, None
            if state != "retry_wait" or retry_in_s is None:
                break
            yield Pause(retry_in_s)
            again = yield from self._claim(("claim", envelope.id))
            if not isinstance(again, Claim):
                break  # someone else has it, or it is not due yet: the ledger decides
            claim = again
            state = yield from self._attempt_once(envelope, claim)
        turn.retry_in_s = None
        return state

    def _attempt_once(self, envelope: JobEnvelope, claim: Claim) -> Steps[str]:
        try:
            use_fallback = False
            request: SendRequest | ContactRequest
            if envelope.channel == "contacts":  # a contact write, not a message
                request = envelope.contact_request()
            else:
                use_fallback = self._may_send(envelope, claim)
                request = _fallback_request(envelope) if use_fallback else envelope.request()
            client = self.clients.for_envelope(envelope)
        except NotSent as refusal:
            return (yield from self._not_sent(envelope, claim, refusal))
        except InvalidRequest as exc:
            return (yield from self._not_sent(envelope, claim, InvalidAtRun(str(exc))))
        except KeyError:
            message = f"no configured key is bound to {envelope.from_phone_no}"
            return (yield from self._not_sent(envelope, claim, NoKeyBound(message)))
        if self._template_stopped(envelope, claim, use_fallback):
            return "retry_wait"
        with self._before_the_call(claim):
            if claim.admission is not None:  # made with the claim (take.lua, claim.lua)
                admission = self.limiter.admission_of(envelope, claim.admission)
            else:
                admission = yield from self.limiter.admit_steps(envelope, attempt=claim.attempt)
            if admission.status == "paused":
                number = envelope.from_phone_no or ""
                self.ledger.release(claim, self.settings.pause_recheck_s, "paused", park_for=number)
                return "retry_wait"
            if admission.status == "wait":
                self.ledger.release(claim, admission.delay_s, self._wait_note(envelope, admission))
                return "retry_wait"
            if admission.delay_s > 0:
                yield Pause(admission.delay_s)  # our reserved slot under every limit
                if envelope.campaign_id and self._campaign_stopped(envelope, claim):
                    return "retry_wait"
        scopes = self.limiter.throttle_scopes(envelope)  # the adaptive throttle counts calls
        started = time.perf_counter()
        try:
            wamid = yield GatewayCall(client, request)
        except GatewayError as error:
            gateway_ms = (time.perf_counter() - started) * 1000
            call = self.limiter.throttle.call(scopes, taken=not error.overload)
            if error.overload:  # never reached Meta: the pair's slot is given back
                call["refunds"] = self.limiter.refunds(envelope)
            if admission.probe and error.overload:
                _turn.get().probe_failed = True  # the gateway is still in trouble
            return (
                yield from self._after_error(envelope, claim, error, use_fallback, gateway_ms, call)
            )
        gateway_ms = (time.perf_counter() - started) * 1000
        return (
            yield from self._finish(
                envelope,
                claim,
                "sent",
                wamid=wamid,
                fallback=use_fallback,
                gateway_ms=gateway_ms,
                call=self.limiter.throttle.call(scopes, taken=True),
            )
        )

    def _template_stopped(self, envelope: JobEnvelope, claim: Claim, use_fallback: bool) -> bool:
        """Meta has stopped the template this job sends (paused, disabled, ...) and would
        drop the message: the job is held, not an attempt, until the template is
        approved again (the webhook releases it) or, failing that, looked at again every
        PAUSE_RECHECK_S; a transactional job still ends at its maximum age."""
        if use_fallback:
            assert envelope.fallback_template is not None
            sent: tuple[str, str] | None = (
                envelope.fallback_template.name,
                envelope.fallback_template.language,
            )
        else:
            sent = envelope.template()
        if sent is None:
            return False
        said = None
        with self._best_effort("template status"):  # not known: the gateway decides
            said = self.stopped_templates.stopping(sent)
        if said is None:
            return False
        self.ledger.release(
            claim,
            self.settings.pause_recheck_s,
            f"template {said.name} ({said.language or 'any language'}) is {said.status}: "
            "held until Meta approves it again",
            park_set=schema.template_held(f"{said.name}|{said.language}"),
        )
        return True

    def _wait_note(self, envelope: JobEnvelope, admission: Admission) -> str:
        """What the job waits for, as its record says it."""
        reach = admission.messaging_limit
        if reach is None:
            return "rate limited"
        return (
            f"messaging limit: portfolio {reach.portfolio} has reached {reach.budget:,} of its "
            f"{reach.tier:,} recipients in 24 h for the {envelope.lane} lane; waits for the "
            "window to slide"
        )

    @staticmethod
    def _may_send(envelope: JobEnvelope, claim: Claim) -> bool:
        """Whether the job goes as its fallback template; NotSent when it cannot go."""
        if claim.suppressed and envelope.lane == "bulk":
            raise Suppressed(
                f"skipped: the recipient is on the suppression list ({claim.suppressed})"
            )
        use_fallback = _needs_window(envelope) and claim.window == "closed"
        if use_fallback and envelope.fallback_template is None:
            raise WindowClosed(
                "not sent: the customer-service window is closed (the customer has not "
                "written in 24 h); only a template can go: give a fallbackTemplate"
            )
        return use_fallback

    def _not_sent(self, envelope: JobEnvelope, claim: Claim, refusal: NotSent) -> Steps[str]:
        return (yield from self._finish(envelope, claim, refusal.state, error=refusal.outcome()))

    def _after_error(
        self,
        envelope: JobEnvelope,
        claim: Claim,
        error: GatewayError,
        use_fallback: bool,
        gateway_ms: float,
        call: dict[str, object],
    ) -> Steps[str]:
        if isinstance(error, OutsideWindow):
            if envelope.from_phone_no is not None:
                with self._best_effort("window"):
                    self.windows.gateway_said_closed(envelope.from_phone_no, envelope.to)
            if envelope.fallback_template is not None and not use_fallback:
                # Not an attempt: the next one sends the template (the window is now
                # known closed), through admission like any other send.
                self.ledger.release(claim, 0.0, "window closed: sending the fallback template")
                return "retry_wait"
        elif isinstance(error, OptedOut):
            with self._best_effort("suppression"):
                self.windows.suppress(envelope.to, OptedOut.suppression_reason)
        return (yield from self._failed(envelope, claim, error, gateway_ms, call))

    def _count_marketing_cap(self, recipient: str) -> int:
        """This recipient's marketing caps lately, this one included (1 if Redis cannot
        say: the first interval is the safe guess)."""
        quiet_s = int(2 * max(self.settings.marketing_cap_backoff_s))
        with self._best_effort("marketing cap"):
            pipe = self.ledger.client.pipeline()
            pipe.incr(schema.marketing_capped(recipient))
            pipe.expire(schema.marketing_capped(recipient), quiet_s)
            return int(pipe.execute()[0])
        return 1

    def _campaign_stopped(self, envelope: JobEnvelope, claim: Claim) -> bool:
        """A campaign paused or cancelled while this job slept for its slot: hold it
        (released on resume, where the claim cancels it if the campaign was cancelled)."""
        assert envelope.campaign_id is not None
        with store_errors():
            state = self.ledger.client.hget(schema.campaign(envelope.campaign_id), "state")
        if state not in (b"paused", b"cancelled"):
            return False
        self.ledger.release(
            claim,
            0.0 if state == b"cancelled" else 3600.0,
            "campaign paused",
            park_set=schema.campaign(envelope.campaign_id, "held"),
        )
        return True

    def _failed(
        self,
        envelope: JobEnvelope,
        claim: Claim,
        error: GatewayError,
        gateway_ms: float | None = None,
        call: dict[str, object] | None = None,
    ) -> Steps[str]:
        deadline_s = envelope.expires_at.timestamp() if envelope.expires_at else None
        times_capped = (
            self._count_marketing_cap(envelope.to) if isinstance(error, MarketingCapped) else 1
        )
        with self._rng_lock:
            decision = decide(
                error,
                claim.attempt,
                envelope.lane,
                self.settings,
                self.rng,
                now_s=self.ledger.clock(),
                expires_at_s=deadline_s,
                times_capped=times_capped,
            )
        delay_s = decision.delay_s
        with self._best_effort("cooldown"):
            self._cool_down(envelope, claim, error, delay_s)
        if error.cooldown is Cooldown.PAUSE_NUMBER and decision.state == "retry_wait":
            delay_s = self.settings.pause_recheck_s
            with self._best_effort("parking"):
                self.ledger.client.sadd(schema.parked(envelope.from_phone_no or ""), envelope.id)
        turn = _turn.get()
        probe_failed, turn.probe_failed = turn.probe_failed, False
        next_ms = timer_ms = None
        if delay_s is not None:
            inline = False
            if probe_failed:
                # A failed probe waits like the jobs the throttle holds back (about the
                # window), so that probes go round the waiting jobs instead of one job
                # spending its attempts on them.
                with self._rng_lock:
                    delay_s = max(
                        delay_s, self.settings.throttle_window_s * self.rng.uniform(0.5, 1.5)
                    )
            elif error.overload and delay_s <= self.settings.limiter_max_sleep_s:
                inline = True
                turn.retry_in_s = delay_s  # _attempt sleeps it and goes again
            next_ms = int((self.ledger.clock() + delay_s) * 1000)
            # The tick looks at a retry this thread makes itself only if the thread has
            # not (it died meanwhile), so that both do not publish it.
            timer_ms = next_ms + int(INLINE_TIMER_GRACE_S * 1000) if inline else None
        report_if_it_pages(envelope, claim.attempt, error, decision.state, self.limiter)
        fields = error_fields(error)
        if isinstance(error, MarketingCapped) and delay_s is not None:
            fields["message"] = (
                f"{fields['message']} (marketing cap {times_capped} for this recipient "
                f"lately: next attempt in {delay_s / 3600:g} h)"
            )
        if decision.state == "expired":
            fields["message"] = (
                f"expired: the next attempt would come after expiresAt ({fields['message']})"
            )
        return (
            yield from self._finish(
                envelope,
                claim,
                decision.state,
                cause=type(error).__name__,
                error=fields,
                next_attempt_ms=next_ms,
                timer_ms=timer_ms,
                ambiguous=decision.ambiguous,
                gateway_ms=gateway_ms,
                call=call,
            )
        )

    def _cool_down(
        self, envelope: JobEnvelope, claim: Claim, error: GatewayError, delay_s: float | None
    ) -> None:
        """Share what the gateway said with every worker: cool the key, the number or the
        recipient down, or pause the number (Meta's spam limit)."""
        number = envelope.from_phone_no
        seconds = error.retry_after_s or delay_s or self.settings.retry_base_delay_s
        scope = error.cooldown
        if scope is Cooldown.KEY and (name := self.limiter.key_name(envelope)) is not None:
            self.limiter.cool_down(f"key:{name}", seconds)
        elif scope is Cooldown.NUMBER and number is not None:
            self.limiter.cool_down(f"num:{number}", seconds)
        elif scope is Cooldown.RECIPIENT and number is not None:
            self.limiter.cool_down(f"pair:{number}:{envelope.to}", float(4**claim.attempt))
        elif (
            scope is Cooldown.PAUSE_NUMBER
            and number is not None
            and self.limiter.pause(number, f"{error.code}: {error.message}")
        ):
            log.warning(
                "number %s paused by the gateway: %s",
                number,
                error.message,
                extra=job_fields(envelope, code=error.code),
            )
            alert(
                f"number {number} paused by the gateway: {error.code} {error.message}",
                fingerprint=["number-paused", number],
                number=number,
                code=error.code,
            )
            if self.on_number_paused is not None:
                self.on_number_paused(number, f"number paused: {error.code} {error.message}")

    def _finish(
        self,
        envelope: JobEnvelope,
        claim: Claim,
        state: str,
        *,
        cause: str = "",
        **fields: Unpack[Outcome],
    ) -> Steps[str]:
        """Record the outcome. After a gateway call the outcome is the one thing that must
        not be lost (losing it means sending again), so a Redis outage is waited out,
        within the job's lease; past it the sweeper treats the job as in flight."""
        deadline = time.monotonic() + self.settings.job_lease_s * 0.8
        pause_s = 0.1
        while True:
            try:
                yield from self._record(claim, state, fields)
                code = (fields.get("error") or {}).get("code")
                log.info(
                    "job %s attempt %d: %s -> %s",
                    claim.job_id,
                    claim.attempt,
                    cause or "done",
                    state,
                    extra=job_fields(envelope, state=state, code=code),
                )
                return state
            except StoreUnavailable as exc:
                if time.monotonic() + pause_s > deadline:
                    raise
                log.warning(
                    "job %s: recording %s waits for Redis: %s",
                    claim.job_id,
                    state,
                    exc,
                    extra=job_fields(envelope, state=state),
                )
                yield Pause(pause_s)
                pause_s = min(pause_s * 2, 2.0)

    def _record(self, claim: Claim, state: str, fields: Outcome) -> Steps[None]:
        """finish.lua; for a job sent with the thread's next claim named
        (:meth:`_attempt_then`), with that claim in the same round trip. When Redis goes
        away meanwhile, whether that claim was made is unknown: it is given back once
        Redis answers, and the outcome is recorded again alone."""
        turn = _turn.get()
        then = turn.then
        if state != "sent" or then is None:
            yield from self.ledger.finish_steps(claim.job_id, claim.attempt, state, **fields)
            return
        turn.then = None
        token = str(next(self._tokens))
        try:
            turn.taken = yield from self.ledger.finish_then(
                claim.job_id,
                claim.attempt,
                state,
                then,
                self.identity,
                token,
                self._admission_plan(then, like=turn.like),
                **fields,
            )
        except StoreUnavailable:
            self._give_back_later(token)
            raise

    @contextlib.contextmanager
    def _best_effort(self, what: str) -> Iterator[None]:
        """A side note to Redis (a cooldown, a window) must not cost the job's outcome."""
        try:
            yield
        except (StoreUnavailable, redis.RedisError) as exc:
            log.warning("could not record the %s: %s", what, exc)
