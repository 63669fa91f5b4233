"""The life of a job inside a worker: claim, admit, send, record. Celery-free.

``tasks/`` calls :meth:`Worker.handle` for each job message; everything a test would
want to drive without a broker lives here.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from pydantic import ValidationError

from config import Settings
from dispatcher import keys
from dispatcher.envelope import JobEnvelope
from dispatcher.errors import Cooldown, GatewayError, InvalidRequest
from dispatcher.gateway import WaapiClient, new_session
from dispatcher.ledger import Claim, Ledger
from dispatcher.limiter import Limiter
from dispatcher.retry import decide, error_fields
from dispatcher.store import connect

log = logging.getLogger("dispatcher.worker")


class Clients:
    """One WaapiClient per configured key; each key's session pools ``pool_size``
    connections, so every worker thread can hold one without churning TLS."""

    def __init__(self, settings: Settings, pool_size: int) -> None:
        self._by_number: dict[str, WaapiClient] = {}
        self._sessions: list[requests.Session] = []
        self._qr: WaapiClient | None = None
        for key in settings.keys:
            session = new_session(pool_size)
            self._sessions.append(session)
            client = WaapiClient.for_key(settings, key, session)
            for number in key.numbers:
                self._by_number[number] = client
            if "qr" in key.channels and self._qr is None:
                self._qr = client
        self._single = len(settings.keys) == 1

    def for_envelope(self, envelope: JobEnvelope) -> WaapiClient:
        """The client of the key bound to the job's number (KeyError if none)."""
        if envelope.from_phone_no is not None:
            return self._by_number[envelope.from_phone_no]
        if self._qr is not None:
            return self._qr
        raise KeyError("no key with the qr channel for a sessionId-only job")

    def close(self) -> None:
        for session in self._sessions:
            session.close()


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
        batch_threads: int | None = None,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.clients = clients
        self.limiter = limiter
        self.rng = rng or random.Random()  # noqa: S311 - backoff jitter, not secrets
        self.sleep = sleep
        self._rng_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(
            max_workers=batch_threads or settings.worker_concurrency,
            thread_name_prefix="waapi-batch",
        )

    @classmethod
    def from_settings(cls, settings: Settings, concurrency: int | None = None) -> Worker:
        threads = concurrency or settings.worker_concurrency
        client = connect(settings.redis_url, max_connections=2 * threads + 8)
        return cls(
            settings,
            Ledger(client, settings),
            Clients(settings, threads),
            Limiter(client, settings),
        )

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.clients.close()

    # --- the life of one job -------------------------------------------------------------

    def handle(self, job: Mapping[str, Any]) -> str:
        """Process one envelope; returns the state it left the job in (or why not)."""
        try:
            envelope = JobEnvelope.model_validate(job)
        except ValidationError as exc:
            log.error(
                "dropped a message whose envelope is invalid: %s",
                "; ".join(
                    f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                    for e in exc.errors(include_input=False)
                ),
            )
            return "invalid"
        claim = self.ledger.claim(envelope.id)
        if claim == "missing":  # published by another app straight to the queue
            self.ledger.enqueue([envelope], mode="none")
            claim = self.ledger.claim(envelope.id)
        if not isinstance(claim, Claim):
            return claim  # a duplicate delivery, or not due: nothing to do
        return self._attempt(envelope, claim)

    def handle_batch(self, jobs: Sequence[Mapping[str, Any]]) -> list[str]:
        """Process a batch concurrently on the worker's batch threads."""
        return list(self._executor.map(self.handle, jobs))

    def _attempt(self, envelope: JobEnvelope, claim: Claim) -> str:
        try:
            request = envelope.request()
            client = self.clients.for_envelope(envelope)
        except InvalidRequest as exc:
            return self._finish(claim, "failed", error={"message": str(exc)})
        except KeyError:
            message = f"no configured key is bound to {envelope.from_phone_no}"
            return self._finish(claim, "failed", error={"message": message})
        admission = self.limiter.admit(envelope)
        if admission.status == "paused":
            number = envelope.from_phone_no or ""
            self.ledger.release(claim, self.settings.pause_recheck_s, "paused", park_for=number)
            return "retry_wait"
        if admission.status == "wait":
            self.ledger.release(claim, admission.delay_s, "rate limited")
            return "retry_wait"
        if admission.delay_s > 0:
            self.sleep(admission.delay_s)  # our reserved slot under every limit
        try:
            result = client.send(request)
        except GatewayError as error:
            return self._failed(envelope, claim, error)
        return self._finish(claim, "sent", wamid=result.message_id)

    def _failed(self, envelope: JobEnvelope, claim: Claim, error: GatewayError) -> str:
        with self._rng_lock:
            decision = decide(error, claim.attempt, envelope.lane, self.settings, self.rng)
        delay_s = decision.delay_s
        self._cool_down(envelope, claim, error, delay_s)
        if error.cooldown is Cooldown.PAUSE_NUMBER and decision.state == "retry_wait":
            delay_s = self.settings.pause_recheck_s
            self.ledger.client.sadd(keys.parked(envelope.from_phone_no or ""), envelope.id)
        next_ms = None
        if delay_s is not None:
            next_ms = int((self.ledger.clock() + delay_s) * 1000)
        log.info(
            "job %s attempt %d: %s -> %s",
            envelope.id,
            claim.attempt,
            type(error).__name__,
            decision.state,
        )
        return self._finish(
            claim,
            decision.state,
            error=error_fields(error),
            next_attempt_ms=next_ms,
            ambiguous=decision.ambiguous,
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
            log.warning("number %s paused by the gateway: %s", number, error.message)

    def _finish(self, claim: Claim, state: str, **fields: Any) -> str:
        self.ledger.finish(claim.job_id, claim.attempt, state, **fields)
        return state
