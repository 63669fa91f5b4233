"""Answers in the gateway's own shapes, and the Meta error messages the sandbox speaks."""

from __future__ import annotations

import math
from typing import Any

from aiohttp import web

META_MESSAGES: dict[int, str] = {
    4: "Application request limit reached",
    100: "Invalid parameter",
    80007: "Rate limit issues: WhatsApp Business Account rate limit hit",
    130429: "Rate limit hit: Cloud API message throughput has been reached",
    131026: "Recipient phone number does not have WhatsApp installed",
    131047: "Re-engagement message: outside 24h window — send a template instead",
    131048: "Spam rate limit hit: too many messages were blocked or flagged as spam",
    131049: "Meta chose not to deliver this message to maintain healthy ecosystem engagement",
    131050: "User has stopped receiving marketing messages from your business",
    131056: "(Business Account, Consumer Account) pair rate limit hit",
    132000: "Number of parameters does not match the expected number of params",
    132001: "Template name does not exist in the translation",
}

MISSING_KEY = "API key required (Authorization: Bearer <waapi_… key or JWT> or X-API-Key header)"
MISSING_SECRET = "API secret required (X-API-Secret header)"
INVALID_SECRET = "Invalid API secret"
INVALID_KEY = "Invalid API key"
QR_NOT_AUTHORIZED = "This API key is not authorized for the WhatsApp QR service"
CLOUD_NOT_AUTHORIZED = "This API key is not authorized for the WhatsApp Cloud API service"
NO_QR_SESSION = "No connected WhatsApp QR session found. Connect a device first."


class Reply(Exception):
    """Raised by a handler to answer at once with ``response``."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def ok(data: Any = None, **extra: Any) -> web.Response:
    body: dict[str, Any] = {"success": True}
    if data is not None:
        body["data"] = data
    body.update(extra)
    return web.json_response(body)


def fail(
    status: int,
    *,
    error: str | None = None,
    message: str | None = None,
    retry_after_s: float | None = None,
) -> Reply:
    """A Reply with ``{"success": false, "error"|"message": ...}`` (the reference uses both)."""
    body: dict[str, Any] = {"success": False}
    if error is not None:
        body["error"] = error
    if message is not None:
        body["message"] = message
    headers = {}
    if retry_after_s is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after_s)))
    return Reply(web.json_response(body, status=status, headers=headers))


def meta_error(code: int, detail: str | None = None) -> Reply:
    """400 with Meta's ``(#code) message``, as the gateway bubbles Meta failures up."""
    return fail(400, error=f"(#{code}) {detail or META_MESSAGES.get(code, 'Meta error')}")
