"""Enqueue endpoints in the gateway's own shapes: point a WAAPI client's base URL here
(``/v1`` instead of ``/api/v1/external``) and get queueing, limits, retries and outcomes."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from config import ProducerToken, normalize_e164
from dispatcher.errors import InvalidRequest, coded
from dispatcher.gateway import CLOUD_KINDS, QR_KINDS
from dispatcher.gateway.contacts import UpdateContact, UpsertContact
from dispatcher.http.auth import Authenticator, check_number
from dispatcher.http.responses import ApiError, invalid, ok
from dispatcher.job.line import parse_job
from dispatcher.job.options import JobOptions
from dispatcher.producer.api import Dispatcher, Enqueued

OPTIONS_DOC = (
    "The gateway's own request body, plus the job's options: `lane` (`transactional` or "
    "`bulk`; `priority` is its former name), `idempotencyKey`, `notBefore`, `expiresAt` "
    "(ISO 8601 with offset), `campaignId` and `fallbackTemplate` (`{name, language, "
    "components}`). 202 with the job id; 200 with the first job's id for a repeated "
    "`idempotencyKey`."
)

Route = Callable[..., Awaitable[JSONResponse]]


async def json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, error=coded("request body must be valid JSON")) from None
    if not isinstance(body, dict):
        raise ApiError(400, error=coded("request body must be a JSON object"))
    return body


def _number(value: Any) -> str | None:
    try:
        return normalize_e164(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _refusal(exc: InvalidRequest) -> str:
    return exc.coded()


class Ingress:
    def __init__(self, dispatcher: Dispatcher, auth: Authenticator) -> None:
        self.dispatcher = dispatcher
        self.auth = auth

    def enqueue(
        self, channel: str, kind: str, body: dict[str, Any], token: ProducerToken
    ) -> JSONResponse:
        try:
            options, gateway_body = JobOptions.split(body)
        except InvalidRequest as exc:
            raise invalid(exc) from None
        if token.numbers is not None:
            check_number(token, _number(gateway_body.get("fromPhoneNo")))
        try:
            result = self.dispatcher.enqueue(channel, kind, gateway_body, options)
        except InvalidRequest as exc:
            raise invalid(exc) from None
        if result.duplicate:
            record = self.dispatcher.job(result.job_id)
            state = record.state if record else "queued"
            return ok({"jobId": result.job_id, "status": state, "duplicate": True}, 200)
        return ok({"jobId": result.job_id, "status": "queued"}, 202)

    def route(self, channel: str, kind: str) -> Route:
        sender = Depends(self.auth.require("send"))

        async def send(request: Request, token: ProducerToken = sender) -> JSONResponse:
            body = await json_object(request)
            return await run_in_threadpool(self.enqueue, channel, kind, body, token)

        return send

    def bulk(self, jobs: list[Any], token: ProducerToken) -> list[dict[str, Any]]:
        answers: list[dict[str, Any]] = [{} for _ in jobs]
        accepted: list[tuple[int, Any]] = []
        for index, item in enumerate(jobs):
            try:
                spec = parse_job(item)
                if token.numbers is not None:
                    check_number(token, _number(spec.body.get("fromPhoneNo")))
            except InvalidRequest as exc:
                answers[index] = {"error": _refusal(exc)}
                continue
            except ApiError as exc:
                answers[index] = {"error": exc.body.get("message")}
                continue
            accepted.append((index, item))
        results = self.dispatcher.send_many([item for _, item in accepted], lane="transactional")
        for (index, _), result in zip(accepted, results, strict=True):
            if isinstance(result, Enqueued):
                answer: dict[str, Any] = {"jobId": result.job_id, "status": "queued"}
                if result.duplicate:
                    answer["duplicate"] = True
                answers[index] = answer
            else:
                answers[index] = {"error": _refusal(result)}
        return answers


def router(dispatcher: Dispatcher, auth: Authenticator) -> APIRouter:
    ingress = Ingress(dispatcher, auth)
    api = APIRouter(tags=["send"])
    for channel, prefix, kinds in (
        ("cloud", "whatsapp-api", CLOUD_KINDS),
        ("qr", "whatsapp-qr", QR_KINDS),
    ):
        for kind, model in kinds.items():
            api.add_api_route(
                f"/v1/{prefix}/messages/{kind}",
                ingress.route(channel, kind),
                methods=["POST"],
                status_code=202,
                description=OPTIONS_DOC,
                summary=f"Queue a {'Cloud API' if channel == 'cloud' else 'QR-session'} "
                f"{kind} message",
                openapi_extra={
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": model.model_json_schema(by_alias=True)}
                        },
                    }
                },
            )

    for kind, method, contact_model in (
        ("upsert", "POST", UpsertContact),
        ("update", "PATCH", UpdateContact),
    ):
        api.add_api_route(
            "/v1/contacts",
            ingress.route("contacts", kind),
            methods=[method],
            status_code=202,
            description="The gateway's own body for " + f"`{method} /contacts`, plus "
            "`fromPhoneNo` (optional: a number of the key to write with) and the job's "
            "options, as for a send. Queued as a job: lane, idempotency, retries, the ledger.",
            summary=f"Queue a contact {kind} ({method} /contacts)",
            tags=["contacts"],
            openapi_extra={
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": contact_model.model_json_schema(by_alias=True)
                        }
                    },
                }
            },
        )

    sender = Depends(auth.require("send"))

    @api.post("/v1/messages/bulk", summary="Queue many jobs, each answered on its own")
    async def bulk(request: Request, token: ProducerToken = sender) -> JSONResponse:
        body = await json_object(request)
        jobs = body.get("jobs")
        if not isinstance(jobs, list) or not jobs:
            raise ApiError(400, error=coded("jobs must be a non-empty list of job objects"))
        limit = dispatcher.settings.bulk_max_jobs
        if len(jobs) > limit:
            raise ApiError(400, error=coded(f"jobs must have at most {limit} items"))
        return ok(await run_in_threadpool(ingress.bulk, jobs, token))

    return api
