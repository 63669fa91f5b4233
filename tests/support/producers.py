"""Producers that keep enqueueing through a fault: one in Python, one over HTTP.

Each sends one template at a time to a new recipient. A refusal (StoreUnavailable, an
HTTP 503, no answer) is retried for the same recipient with the same idempotency key, as
a careful producer does: an enqueue that was not acknowledged may still have been made,
and the key makes the retry return that job instead of queueing a second one.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from typing import Any

import requests

from dispatcher.errors import StoreUnavailable
from tests.support.data import BEARER


class Producers:
    """Two producer threads; ``accepted`` job ids, ``refused`` counts by kind, ``lanes``
    (recipient -> lane) of what was accepted."""

    def __init__(
        self,
        stack: Any,
        url: str,
        numbers: tuple[str, str],
        prefixes: tuple[str, str],
        *,
        count: int | None = None,
        interval_s: float = 0.01,
    ) -> None:
        self.stack, self.url = stack, url
        self.numbers, self.prefixes = numbers, prefixes
        self.count, self.interval_s = count, interval_s
        self.accepted: list[str] = []
        self.refused = collections.Counter[str]()
        self.lanes: dict[str, str] = {}
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._python, daemon=True),
            threading.Thread(target=self._http, daemon=True),
        ]

    def start(self) -> Producers:
        for thread in self._threads:
            thread.start()
        return self

    def join(self, timeout_s: float) -> None:
        """Wait for producers with a ``count`` to have that many accepted."""
        for thread in self._threads:
            thread.join(timeout_s)

    def stop(self) -> None:
        self._stop.set()
        self.join(30)

    def _run(self, prefix: str, enqueue: Callable[[str], str | None]) -> None:
        n = 0
        while not self._stop.is_set() and (self.count is None or n < self.count):
            time.sleep(self.interval_s)
            to = f"+{prefix}{n:07d}"
            job_id = enqueue(to)
            if job_id is None:  # refused: the same recipient again, with the same key
                time.sleep(0.05)
                continue
            self.accepted.append(job_id)
            self.lanes[to] = "transactional"
            n += 1

    def _python(self) -> None:
        with self.stack.dispatcher() as dispatcher:

            def enqueue(to: str) -> str | None:
                try:
                    return str(
                        dispatcher.send_template(
                            to, self.numbers[0], "hello_world", "en", idempotency_key=to
                        )
                    )
                except StoreUnavailable:
                    self.refused["python"] += 1
                    return None

            self._run(self.prefixes[0], enqueue)

    def _http(self) -> None:
        with requests.Session() as session:

            def enqueue(to: str) -> str | None:
                body = {"to": to, "fromPhoneNo": self.numbers[1], "name": "hello_world"}
                body |= {"language": "en", "idempotencyKey": to}
                try:
                    answer = session.post(
                        self.url + "/v1/whatsapp-api/messages/template",
                        headers=BEARER["crm"],
                        json=body,
                        timeout=10,
                    )
                except requests.RequestException:
                    self.refused["http (no answer)"] += 1
                    return None
                if answer.status_code not in (200, 202):
                    self.refused[f"http {answer.status_code}"] += 1
                    return None
                return str(answer.json()["data"]["jobId"])

            self._run(self.prefixes[1], enqueue)
