"""Reading what sentry-sdk posted to a receiver (envelopes, events)."""

from __future__ import annotations

import gzip
import json
from typing import Any

from tests.support.receiver import WebhookReceiver


def sentry_dsn(receiver: WebhookReceiver) -> str:
    """A DSN that makes sentry-sdk post its envelopes to ``receiver`` over loopback."""
    return f"http://public0123456789abcdef@127.0.0.1:{receiver.server.server_port}/1"


def sentry_envelopes(receiver: WebhookReceiver) -> list[str]:
    """Every envelope sentry-sdk posted, as text (decompressed)."""
    texts = []
    with receiver._lock:
        received = list(receiver.received)
    for item in received:
        body = item.body
        if item.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        texts.append(body.decode())
    return texts


def sentry_events(receiver: WebhookReceiver) -> list[dict[str, Any]]:
    """The events in those envelopes (an envelope is JSON lines: header, item, payload)."""
    events = []
    for text in sentry_envelopes(receiver):
        lines = text.splitlines()
        for header, payload in zip(lines[1::2], lines[2::2], strict=False):
            if json.loads(header).get("type") == "event":
                events.append(json.loads(payload))
    return events
