"""The console at ``/console``, and ``GET /v1/me``, the first thing it asks.

The console is a small static app (``console/``: one page, a stylesheet, a script; no
build step, nothing fetched from elsewhere, so it works offline) over the service's own
JSON API, signed in with a producer token. A static app rather than server-rendered
pages because every page it shows is already an endpoint (``/v1/status``, ``/v1/jobs``,
``/v1/campaigns``, ``/v1/dlq``): the console adds no second way to read the ledger, and
what it can do is what the token's scopes allow, checked where they always are.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from config import ProducerToken, Settings
from dispatcher.http.auth import Authenticator
from dispatcher.http.responses import ok
from dispatcher.ledger.states import STATES

CONSOLE_DIR = Path(__file__).parent / "console"
# The page loads only its own script and stylesheet, and is framed by nobody.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
}


def router(settings: Settings, auth: Authenticator) -> APIRouter:
    api = APIRouter()
    signed_in = Depends(auth.require(None))

    @api.get("/v1/me", tags=["auth"], summary="The token's name, scopes and numbers")
    async def me(token: ProducerToken = signed_in) -> JSONResponse:
        numbers = token.numbers if token.numbers is not None else settings.from_numbers
        return ok(
            {
                "name": token.name,
                "scopes": sorted(token.scopes),
                "numbers": list(numbers),
                "states": list(STATES),
            }
        )

    @api.get("/console", include_in_schema=False)
    async def console() -> FileResponse:
        return FileResponse(CONSOLE_DIR / "index.html", headers=PAGE_HEADERS)

    return api


def mount(app: FastAPI) -> None:
    """The console's assets under ``/console/`` (the page itself is ``/console``)."""
    app.mount("/console", StaticFiles(directory=CONSOLE_DIR, html=True), name="console")
