"""``POST /v1/webhooks/waapi``: the gateway's signed webhooks."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from dispatcher.http.responses import ApiError
from dispatcher.webhooks import WebhookReceiver, parse_body


def router(receiver: WebhookReceiver) -> APIRouter:
    api = APIRouter(tags=["webhooks"])

    @api.post("/v1/webhooks/waapi", summary="Receive WAAPI's signed webhooks")
    async def waapi_webhook(request: Request) -> JSONResponse:
        body = await request.body()
        if not receiver.verify(body, request.headers.get("x-hub-signature-256")):
            raise ApiError(401, message="invalid or missing X-Hub-Signature-256")
        payload = parse_body(body)
        if payload is None:
            raise ApiError(400, error="body is not JSON")
        delivery = request.headers.get("x-waapi-delivery")

        def handle() -> JSONResponse:
            if not receiver.claim_delivery(delivery):
                return JSONResponse({"ok": True, "duplicate": True})
            try:
                applied = receiver.apply(payload)
            except Exception:
                receiver.forget_delivery(delivery)  # the gateway retries 5xx
                raise
            return JSONResponse(
                {"ok": True, "statuses": applied.statuses, "inbound": applied.inbound}
            )

        return await run_in_threadpool(handle)

    return api
