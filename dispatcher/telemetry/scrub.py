"""Scrub what leaves the process for people to read: secrets, phone numbers, bodies.

Sentry's own scrubber matches exact key names only (``to``, ``body`` and
``access_token`` pass through it), and a secret can hide inside any string (an
exception message, a breadcrumb, a URL), so this walks every value: configured secrets
are replaced wherever they appear, E.164 numbers are masked inside any string, and the
values of keys that hold message content are dropped whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from config import Settings

FILTERED = "[Filtered]"

# Keys whose values are message content or contact data: dropped whole.
CONTENT_KEYS = frozenset(
    {
        "body",
        "text",
        "caption",
        "bodytext",
        "header",
        "footer",
        "components",
        "payload",
        "contact",
        "buttons",
        "sections",
        "email",
        "firstname",
        "lastname",
        "name_full",
        "messages",
        "authorization",
        "x-api-secret",
        "x-api-key",
        "cookie",
        "api_secret",
        "apisecret",
        "secret",
        "token",
        "password",
        "dsn",
    }
)
# Keys whose values are phone numbers (kept masked, unless numbers may be kept).
NUMBER_KEYS = frozenset({"to", "from", "fromphoneno", "wa_id", "recipient_id", "phone"})
E164_IN_TEXT = re.compile(r"(?<![\w+])\+?[1-9]\d{7,14}(?!\d)")


def mask_number(number: str) -> str:
    """``+15553330001`` -> ``+155******01``: enough to tell numbers apart in a report."""
    if len(number) <= 6:
        return "*" * len(number)
    return number[:4] + "*" * (len(number) - 6) + number[-2:]


class Scrubber:
    """Replaces secrets, masks numbers and drops content, recursively. Thread-safe."""

    def __init__(
        self,
        secrets: Iterable[str],
        *,
        keep_numbers: bool = False,
        own_numbers: Iterable[str] = (),
    ) -> None:
        # Longest first, so a secret that contains another is replaced whole.
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)
        self.keep_numbers = keep_numbers
        # Our own sending numbers are not personal data, and operators need to see them.
        self.own_numbers = frozenset(own_numbers)

    def number(self, value: str) -> str:
        if self.keep_numbers or value in self.own_numbers:
            return value
        return mask_number(value)

    def text(self, value: str) -> str:
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, FILTERED)
        if not self.keep_numbers:
            value = E164_IN_TEXT.sub(lambda m: self.number(m.group(0)), value)
        return value

    def __call__(self, value: Any, key: str | None = None) -> Any:
        name = key.lower() if isinstance(key, str) else None
        if name in CONTENT_KEYS and value not in (None, "", [], {}):
            return FILTERED
        if isinstance(value, str):
            if name in NUMBER_KEYS:
                return self.number(self.text(value))
            return self.text(value)
        if isinstance(value, dict):
            return {k: self(v, k if isinstance(k, str) else None) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self(v) for v in value]
        return value


def scrubber_for(settings: Settings, *, keep_numbers: bool = False) -> Scrubber:
    """The scrubber of this deployment: its secrets, its own numbers left readable."""
    return Scrubber(
        settings.secret_values(), keep_numbers=keep_numbers, own_numbers=settings.from_numbers
    )
