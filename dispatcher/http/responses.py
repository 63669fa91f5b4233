"""Answers: ``{"success": true, "data": ...}``, and two shapes of refusal.

The mirrors of the gateway (``/v1/whatsapp-api/...``, ``/v1/whatsapp-qr/...``,
``/v1/contacts``) answer in the gateway's own shapes, ``{"success": false, "error": ...}``
for a refused body and ``{"success": false, "message": ...}`` for the rest, so that WAAPI
clients read them unchanged. Every other endpoint of the service, unknown paths and
methods included, refuses in one shape: ``{"success": false, "error": "<what and why>"}``.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from dispatcher.errors import InvalidRequest, NotPermitted


class ApiError(Exception):
    """Raised by a route to answer at once; rendered by the app's handler."""

    def __init__(self, status: int, *, error: str | None = None, message: str | None = None):
        super().__init__(error or message)
        self.status = status
        self.body: dict[str, Any] = {"success": False}
        if error is not None:
            self.body["error"] = error
        if message is not None:
            self.body["message"] = message

    def response(self, path: str, headers: dict[str, str] | None = None) -> JSONResponse:
        """The refusal in the shape ``path`` answers in (a mirror's or the service's)."""
        body = self.body
        if not is_mirror(path):
            body = {"success": False, "error": self.body.get("error") or self.body["message"]}
        return JSONResponse(body, status_code=self.status, headers=headers)


MIRRORS = ("/v1/whatsapp-api/", "/v1/whatsapp-qr/", "/v1/contacts")


def is_mirror(path: str) -> bool:
    """Whether ``path`` mirrors the gateway (and answers in its shapes)."""
    return path.startswith(MIRRORS)


def invalid(exc: InvalidRequest) -> ApiError:
    """400 in the gateway's validation format: ``(#100) <field> <rule>; ...``; a missing
    permission is the gateway's 403 with its own message."""
    if isinstance(exc, NotPermitted):
        return ApiError(403, message=exc.message)
    return ApiError(400, error=exc.coded())


def ok(data: Any, status: int = 200, **extra: Any) -> JSONResponse:
    return JSONResponse({"success": True, "data": data, **extra}, status_code=status)
