"""Answers in the gateway's shapes: ``{"success": true, "data": ...}`` and
``{"success": false, "error"|"message": ...}``, so WAAPI clients read them unchanged."""

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

    def response(self) -> JSONResponse:
        return JSONResponse(self.body, status_code=self.status)


def invalid(exc: InvalidRequest) -> ApiError:
    """400 in the gateway's validation format: ``(#100) <field> <rule>; ...``; a missing
    permission is the gateway's 403 with its own message."""
    if isinstance(exc, NotPermitted):
        return ApiError(403, message=exc.message)
    return ApiError(400, error=exc.coded())


def ok(data: Any, status: int = 200, **extra: Any) -> JSONResponse:
    return JSONResponse({"success": True, "data": data, **extra}, status_code=status)
