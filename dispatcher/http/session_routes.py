"""``GET /v1/whatsapp-qr/sessions``: the QR sessions the configured keys can use."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from config import ProducerToken, Settings
from dispatcher.errors import GatewayError
from dispatcher.http.auth import Authenticator
from dispatcher.http.responses import ApiError, ok
from dispatcher.ops.sessions import as_gateway_item, qr_sessions


def router(settings: Settings, auth: Authenticator) -> APIRouter:
    api = APIRouter(tags=["sessions"])
    reader = Depends(auth.require("read"))

    @api.get("/v1/whatsapp-qr/sessions", summary="Connected QR sessions (asked of the gateway)")
    async def sessions(token: ProducerToken = reader) -> JSONResponse:
        try:
            found = await run_in_threadpool(qr_sessions, settings)
        except GatewayError as exc:
            raise ApiError(502, message=f"the gateway answered: {exc.message}") from None
        items = [as_gateway_item(s) for s in found]
        return ok(items, count=len(items))

    return api
