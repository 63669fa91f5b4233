"""``POST /v1/webhooks/waapi``: the gateway's signed webhooks."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from dispatcher.errors import InvalidRequest
from dispatcher.http.responses import ApiError
from dispatcher.webhooks.notification import parse_envelope
from dispatcher.webhooks.receiver import WebhookReceiver, parse_body


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
        try:
            envelope = parse_envelope(payload)
        except InvalidRequest as exc:  # signed, but not an envelope: refused whole
            raise ApiError(400, error="; ".join(str(p) for p in exc.problems[:10])) from None
        delivery = request.headers.get("x-waapi-delivery")

        def handle() -> JSONResponse:
            if not receiver.claim_delivery(delivery):
                return JSONResponse({"ok": True, "duplicate": True})
            try:
                applied = receiver.apply(envelope)
            except Exception:
                receiver.forget_delivery(delivery)  # the gateway retries 5xx
                raise
            answer = {"ok": True, "statuses": applied.statuses, "inbound": applied.inbound}
            if applied.unrecognised:
                answer["unrecognised"] = [
                    {"kind": u.kind, "path": u.path, "name": u.name} for u in applied.unrecognised
                ]
            return JSONResponse(answer)

        return await run_in_threadpool(handle)

    return api
