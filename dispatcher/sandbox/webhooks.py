"""Meta-shaped webhooks from the sandbox, signed like WAAPI signs them.

``X-Hub-Signature-256: sha256=<hex HMAC-SHA-256 of the raw body>`` keyed with the API
key's webhook verify token, plus ``X-WAAPI-Event`` and a unique ``X-WAAPI-Delivery``. A
delivery that gets 5xx/408/429 or no answer is retried with backoff, under the same
delivery id, as the real platform does.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import time
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp

log = logging.getLogger("dispatcher.sandbox.webhooks")

WABA_ID = "959648497055756"
RETRY_STATUSES = frozenset({408, 429}) | frozenset(range(500, 600))


def sign(body: bytes, verify_token: str) -> str:
    """The ``X-Hub-Signature-256`` header value for ``body``."""
    digest = hmac.new(verify_token.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def phone_number_id(number: str) -> str:
    """A stable Meta-style phone_number_id for one of our numbers."""
    return str(10**15 + int(number.lstrip("+")) % 10**15)


def _envelope(our_number: str, value: dict[str, Any]) -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": WABA_ID,
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": our_number,
                                "phone_number_id": phone_number_id(our_number),
                            },
                            **value,
                        },
                    }
                ],
            }
        ],
    }


def status_payload(
    our_number: str,
    wamid: str,
    recipient: str,
    status: str,
    *,
    error_code: int | None = None,
    error_title: str | None = None,
    category: str = "utility",
) -> dict[str, Any]:
    """A statuses[] webhook for ``wamid`` (failed ones carry Meta's errors[])."""
    item: dict[str, Any] = {
        "id": wamid,
        "status": status,
        "timestamp": str(int(time.time())),
        "recipient_id": recipient.lstrip("+"),
    }
    if status in ("sent", "delivered"):
        item["conversation"] = {
            "id": hashlib.md5(
                f"{our_number}:{recipient}".encode(), usedforsecurity=False
            ).hexdigest(),
            "expiration_timestamp": str(int(time.time()) + 86_400),
            "origin": {"type": category},
        }
        item["pricing"] = {
            "billable": True,
            "pricing_model": "CBP",
            "category": category,
            "type": "regular",
        }
    if status == "failed":
        item["errors"] = [
            {
                "code": error_code or 131026,
                "title": error_title or "Message undeliverable",
                "error_data": {"details": error_title or "Message undeliverable"},
            }
        ]
    return _envelope(our_number, {"statuses": [item]})


def inbound_payload(
    our_number: str,
    customer: str,
    wamid: str,
    *,
    text: str | None = None,
    button_id: str | None = None,
    button_title: str | None = None,
    context_id: str | None = None,
    name: str = "Sandbox Customer",
) -> dict[str, Any]:
    """An incoming text or button-reply webhook from ``customer`` to ``our_number``."""
    message: dict[str, Any] = {
        "from": customer.lstrip("+"),
        "id": wamid,
        "timestamp": str(int(time.time())),
    }
    if button_id is not None:
        message["type"] = "interactive"
        message["interactive"] = {
            "type": "button_reply",
            "button_reply": {"id": button_id, "title": button_title or button_id},
        }
    else:
        message["type"] = "text"
        message["text"] = {"body": text or ""}
    if context_id is not None:
        message["context"] = {"from": our_number, "id": context_id}
    contacts = [{"profile": {"name": name}, "wa_id": customer.lstrip("+")}]
    return _envelope(our_number, {"contacts": contacts, "messages": [message]})


def new_delivery_id() -> str:
    """A unique ``X-WAAPI-Delivery``; a retried or duplicated delivery keeps its id."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Delivery:
    url: str
    verify_token: str
    payload: dict[str, Any]
    event: str = "messages"
    delay_s: float = 0.0


class WebhookSender:
    """Posts deliveries in the background; counts what it did for ``/_sandbox/stats``."""

    def __init__(self, max_attempts: int, rng: random.Random) -> None:
        self.max_attempts = max_attempts
        self._rng = rng
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[bool]] = set()
        self.posted = 0
        self.failed = 0

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    def submit(self, delivery: Delivery, copies: int = 1) -> None:
        """Post ``delivery`` ``copies`` times (same delivery id) in the background."""
        delivery_id = new_delivery_id()
        for _ in range(copies):
            task = asyncio.create_task(self.post(delivery, delivery_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def post(self, delivery: Delivery, delivery_id: str | None = None) -> bool:
        """Post once with retries; True when the receiver answered 2xx."""
        if delivery.delay_s:
            await asyncio.sleep(delivery.delay_s)
        assert self._session is not None, "WebhookSender.start() was not awaited"
        body = json.dumps(delivery.payload, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": sign(body, delivery.verify_token),
            "X-WAAPI-Event": delivery.event,
            "X-WAAPI-Delivery": delivery_id or new_delivery_id(),
        }
        for attempt in range(self.max_attempts):
            try:
                async with self._session.post(delivery.url, data=body, headers=headers) as resp:
                    if resp.status < 300:
                        self.posted += 1
                        return True
                    if resp.status not in RETRY_STATUSES:
                        break
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.debug("webhook post to %s failed: %s", delivery.url, exc)
            await asyncio.sleep(min(8.0, 0.25 * 2**attempt) * (0.5 + self._rng.random()))
        self.failed += 1
        return False
