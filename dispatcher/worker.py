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
from typing import Any, Protocol

import requests
from pydantic import ValidationError

from config import Settings
from dispatcher.envelope import JobEnvelope
from dispatcher.errors import GatewayError, InvalidRequest
from dispatcher.gateway import WaapiClient, new_session
from dispatcher.ledger import Claim, Ledger
from dispatcher.retry import decide, error_fields
from dispatcher.store import connect

log = logging.getLogger("dispatcher.worker")


class Limiter(Protocol):
    """Admission before a send: seconds to wait (0 means go now)."""

    def admit(self, envelope: JobEnvelope) -> float: ...


class NoLimiter:
    """Admits everything; the global limiter replaces it."""

    def admit(self, envelope: JobEnvelope) -> float:
        return 0.0


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
        *,
        limiter: Limiter | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
        batch_threads: int | None = None,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.clients = clients
        self.limiter = limiter or NoLimiter()
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
        return cls(settings, Ledger(client, settings), Clients(settings, threads))

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
        wait_s = self.limiter.admit(envelope)
        if wait_s > 0:
            self.sleep(wait_s)
        try:
            result = client.send(request)
        except GatewayError as error:
            with self._rng_lock:
                decision = decide(error, claim.attempt, envelope.lane, self.settings, self.rng)
            next_ms = None
            if decision.delay_s is not None:
                next_ms = int((self.ledger.clock() + decision.delay_s) * 1000)
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
        return self._finish(claim, "sent", wamid=result.message_id)

    def _finish(self, claim: Claim, state: str, **fields: Any) -> str:
        self.ledger.finish(claim.job_id, claim.attempt, state, **fields)
        return state
