"""The HTTP service: enqueue in the gateway's shapes, look jobs up, receive webhooks.

``create_app(settings)`` builds it; ``app_from_env()`` is the uvicorn factory that
reads settings from the environment (``waapi-dispatch serve``).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from config import Settings, load_settings
from dispatcher.campaigns import Campaigns
from dispatcher.errors import StoreUnavailable, coded
from dispatcher.heap import settle_heap
from dispatcher.http import (
    campaign_routes,
    console_routes,
    dlq_routes,
    ingress,
    lookup,
    metrics_routes,
    session_routes,
    webhook_routes,
)
from dispatcher.http.auth import Authenticator
from dispatcher.http.body_limit import BodyLimitMiddleware
from dispatcher.http.responses import ApiError
from dispatcher.ops.deadletters import DeadLetters
from dispatcher.producer.api import Dispatcher
from dispatcher.telemetry.setup import start_telemetry
from dispatcher.webhooks.receiver import WebhookReceiver


def create_app(settings: Settings, dispatcher: Dispatcher | None = None) -> FastAPI:
    dispatcher = dispatcher or Dispatcher(settings)
    auth = Authenticator(settings.tokens)
    # FastAPIOffline: /docs (Swagger UI) and /redoc with their assets from the package.
    app = FastAPIOffline(
        title="waapi-dispatcher",
        summary="Queue WhatsApp sends through WAAPI: the gateway's request shapes, with "
        "queueing, global rate limits, retries and a ledger of outcomes.",
        version="0.1.0",
    )
    app.include_router(ingress.router(dispatcher, auth))
    app.include_router(lookup.router(dispatcher, auth))
    campaigns = Campaigns(dispatcher)
    # A template Meta stops pauses the campaigns that send it, at once (and resumes them).
    receiver = WebhookReceiver(
        settings, dispatcher.ledger, on_template_status=campaigns.template_changed
    )
    app.include_router(webhook_routes.router(receiver))
    app.include_router(campaign_routes.router(campaigns, auth))
    app.include_router(dlq_routes.router(DeadLetters(dispatcher.ledger), auth))
    app.include_router(metrics_routes.router(dispatcher.ledger.client, settings, auth))
    app.include_router(session_routes.router(settings, auth))
    app.include_router(console_routes.router(settings, auth))
    console_routes.mount(app)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response(request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def no_such_route(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """Unknown paths and methods (and any HTTP error Starlette raises) in the
        service's shape, not FastAPI's ``{"detail": ...}``."""
        what = f"{request.method} {request.url.path}"
        text = {404: f"no such endpoint: {what}", 405: f"method not allowed: {what}"}
        refusal = ApiError(exc.status_code, message=text.get(exc.status_code, str(exc.detail)))
        return refusal.response(request.url.path, headers=dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def bad_parameters(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:])} {e['msg']}" for e in exc.errors()
        )
        return JSONResponse({"success": False, "error": coded(problems)}, status_code=400)

    @app.exception_handler(StoreUnavailable)
    async def store_down(request: Request, exc: StoreUnavailable) -> JSONResponse:
        refusal = ApiError(503, message="queue unavailable, retry")
        return refusal.response(request.url.path, headers={"Retry-After": "1"})

    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.http_max_body_bytes)
    return app


def app_from_env() -> FastAPI:
    """uvicorn's factory: the entry point that reads the environment."""
    settings = load_settings()
    start_telemetry(settings, "web")
    app = create_app(settings)
    settle_heap()  # the service is built: its heap is frozen (dispatcher.heap)
    return app
