"""The running sandbox: its configuration, its state, and the webhooks it posts."""

from __future__ import annotations

import random
import time
from typing import Any

from aiohttp import web

from dispatcher.gateway.contacts import ContactFields
from dispatcher.sandbox.config import SandboxConfig, SandboxKey, SandboxTemplate
from dispatcher.sandbox.state import SandboxState
from dispatcher.sandbox.webhooks import (
    Delivery,
    WebhookSender,
    inbound_payload,
    new_delivery_id,
    status_payload,
)


class Sandbox:
    """One sandbox gateway. Mutable at run time through ``/_sandbox`` endpoints."""

    def __init__(self, config: SandboxConfig) -> None:
        self.initial = config.model_copy(deep=True)
        self.config = config
        self.rng = random.Random(config.seed)
        self.state = SandboxState(config.window_s)
        self.sender = WebhookSender(config.webhooks.max_attempts, self.rng)
        self.clock_offset_s = 0.0
        self._index()

    def now(self) -> float:
        """The sandbox's clock (monotonic seconds) for windows, quotas and the messaging
        limit; ``POST /_sandbox/clock`` moves it forward so tests can live a day in a
        minute."""
        return time.monotonic() + self.clock_offset_s

    def _index(self) -> None:
        self.keys: dict[str, SandboxKey] = {k.key: k for k in self.config.keys}
        self.templates: dict[tuple[str, str], SandboxTemplate] = {
            (t.name, t.language): t for t in self.config.templates
        }

    def reset(self) -> None:
        """Forget every message, contact, window, quota and fault set at run time."""
        self.config = self.initial.model_copy(deep=True)
        self.rng.seed(self.config.seed)
        self.state = SandboxState(self.config.window_s)
        self.sender.posted = self.sender.failed = 0
        self.clock_offset_s = 0.0
        self._index()

    def key_for_number(self, number: str) -> SandboxKey | None:
        for key in self.config.keys:
            if number in key.numbers:
                return key
        return None

    # --- contacts ----------------------------------------------------------------------

    def upsert_contact(self, vendor_id: str, phone: str, fields: ContactFields) -> dict[str, Any]:
        contact = self.state.contacts.get((vendor_id, phone))
        if contact is None:
            contact = {"_id": self.state.new_object_id(), "phoneNumber": phone}
            self.state.contacts[(vendor_id, phone)] = contact
        contact.update(fields.model_dump(exclude_none=True, mode="json"))
        return dict(contact)

    # --- webhooks ----------------------------------------------------------------------

    async def schedule_statuses(
        self,
        key: SandboxKey,
        sender: str,
        to: str,
        wamid: str,
        message_type: str,
        *,
        delivered: bool = True,
    ) -> None:
        """Post sent/delivered/read (or sent/failed) for an accepted Cloud send; only
        ``sent`` for one that will never be delivered (over the messaging limit)."""
        if not key.webhook_url:
            return
        hooks = self.config.webhooks
        steps: list[str] = list(hooks.statuses)
        if to in hooks.failed_recipients:
            steps = ["sent", "failed"]
        elif not delivered:
            steps = [s for s in steps if s == "sent"]
        category = "marketing" if message_type == "template" else "service"
        delays = [(i + 1) * hooks.step_ms / 1000.0 for i in range(len(steps))]
        if hooks.reorder:
            self.rng.shuffle(delays)
        for delay, status in sorted(zip(delays, steps, strict=True)):
            payload = status_payload(sender, wamid, to, status, category=category)
            copies = 2 if self.rng.random() < hooks.duplicate_rate else 1
            if hooks.before_response:  # in order of their delays, all before the answer
                delivery = Delivery(key.webhook_url, key.webhook_verify_token, payload)
                delivery_id = new_delivery_id()
                for _ in range(copies):
                    await self.sender.post(delivery, delivery_id)
            else:
                delivery = Delivery(
                    key.webhook_url, key.webhook_verify_token, payload, delay_s=delay
                )
                self.sender.submit(delivery, copies)

    def emit_status(
        self, wamid: str, status: str, code: int | None = None, title: str | None = None
    ) -> bool:
        """Post a status webhook for one of our wamids; False when the wamid is unknown."""
        entry = self.state.by_wamid.get(wamid)
        if entry is None:
            return False
        key = self.keys.get(entry["key"])
        if key is None or not key.webhook_url:
            return False
        payload = status_payload(
            entry["from"], wamid, entry["to"], status, error_code=code, error_title=title
        )
        self.sender.submit(Delivery(key.webhook_url, key.webhook_verify_token, payload))
        return True

    def inbound(self, customer: str, our_number: str, now: float, **message: Any) -> str:
        """A customer writes to us: open the window and post the inbound webhook."""
        self.state.open_window(our_number, customer, now)
        wamid = self.state.new_wamid()
        key = self.key_for_number(our_number)
        if key is not None and key.webhook_url:
            payload = inbound_payload(our_number, customer, wamid, **message)
            self.sender.submit(Delivery(key.webhook_url, key.webhook_verify_token, payload))
        return wamid


SANDBOX_KEY = web.AppKey("sandbox", Sandbox)
