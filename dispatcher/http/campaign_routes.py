"""``/v1/campaigns``: create with an inline audience, list, show, control, report."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from config import ProducerToken
from dispatcher.campaigns import Campaigns, CampaignSpec, Refused
from dispatcher.campaigns.audience import recipients, rows
from dispatcher.errors import InvalidRequest, coded
from dispatcher.gateway.validation import problems_of
from dispatcher.http.auth import Authenticator, check_number
from dispatcher.http.ingress import json_object
from dispatcher.http.responses import ApiError, invalid, ok

PREVIEW_ROWS = 5  # the sends a preview shows


def router(campaigns: Campaigns, auth: Authenticator) -> APIRouter:
    api = APIRouter(tags=["campaigns"])
    manager = Depends(auth.require("campaigns"))

    def found(campaign_id: str, token: ProducerToken) -> dict[str, Any]:
        info = campaigns.get(campaign_id)
        if info is None:
            raise ApiError(404, error="Campaign not found")
        for number in info["spec"]["fromPhoneNos"]:
            check_number(token, number)
        return info

    async def spec_and_audience(
        request: Request, token: ProducerToken
    ) -> tuple[CampaignSpec, Iterator[tuple[int, dict[str, Any]] | Refused]]:
        """The body's campaign spec (checked, its numbers the token's) and audience."""
        body = await json_object(request)
        try:
            spec = CampaignSpec.model_validate(body.get("campaign"))
        except ValidationError as exc:
            problems = "; ".join(str(p) for p in problems_of(exc, "campaign"))
            raise ApiError(400, error=coded(problems)) from None
        for number in spec.numbers:
            check_number(token, number)
        if isinstance(body.get("audienceCsv"), str):
            return spec, rows(io.StringIO(body["audienceCsv"]), "csv")
        if isinstance(body.get("audience"), list):
            return spec, recipients(enumerate(body["audience"], start=1))
        raise ApiError(
            400, error=coded("audience must be a list of recipients (or audienceCsv a CSV text)")
        )

    @api.post(
        "/v1/campaigns",
        status_code=201,
        summary="Create a campaign",
        description='`{"campaign": <spec>, "audience": [{"to", ...variables}]}`, or '
        '`"audienceCsv": "to,name\\n..."` for a CSV audience.',
    )
    async def create(request: Request, token: ProducerToken = manager) -> JSONResponse:
        spec, audience = await spec_and_audience(request, token)
        try:
            created = await run_in_threadpool(campaigns.create, spec, audience)
        except InvalidRequest as exc:
            raise invalid(exc) from None
        return ok(
            {
                "campaignId": created.campaign_id,
                "recipients": created.recipients,
                "refused": [{"line": r.line, "reason": r.reason} for r in created.refused],
                "nextRun": created.next_run.isoformat() if created.next_run else None,
                "plan": created.plan,
            },
            201,
        )

    @api.post(
        "/v1/campaigns/preview",
        summary="What a campaign would send, storing nothing",
        description="The body of a create. Answers how many recipients would be sent, "
        f"the refused rows by line, and the first {PREVIEW_ROWS} sends as the gateway "
        "would get them (the message rendered for each row).",
    )
    async def preview(request: Request, token: ProducerToken = manager) -> JSONResponse:
        spec, audience = await spec_and_audience(request, token)
        try:
            found = await run_in_threadpool(campaigns.preview, spec, audience, PREVIEW_ROWS)
        except InvalidRequest as exc:
            raise invalid(exc) from None
        return ok(
            {
                "recipients": found.recipients,
                "refused": [{"line": r.line, "reason": r.reason} for r in found.refused],
                "rows": [
                    {
                        "line": row.line,
                        "to": row.values["to"],
                        "fromPhoneNo": row.number,
                        "body": spec.send_for(row.values, row.number),
                    }
                    for row in found.rows
                ],
            }
        )

    @api.get("/v1/campaigns", summary="Campaigns, newest first")
    async def listing(token: ProducerToken = manager) -> JSONResponse:
        found_all = await run_in_threadpool(campaigns.recent)
        allowed = [
            c
            for c in found_all
            if token.numbers is None or set(c["spec"]["fromPhoneNos"]) <= set(token.numbers)
        ]
        return ok(allowed)

    @api.get("/v1/campaigns/{campaign_id}", summary="A campaign and its funnel")
    async def show(campaign_id: str, token: ProducerToken = manager) -> JSONResponse:
        return ok(await run_in_threadpool(found, campaign_id, token))

    for action in ("pause", "resume", "cancel"):

        async def control(
            campaign_id: str, token: ProducerToken = manager, action: str = action
        ) -> JSONResponse:
            await run_in_threadpool(found, campaign_id, token)
            done = await run_in_threadpool(getattr(campaigns, action), campaign_id)
            if not done:
                raise ApiError(409, error=f"campaign cannot {action} in its current state")
            return ok(await run_in_threadpool(campaigns.get, campaign_id))

        api.add_api_route(
            f"/v1/campaigns/{{campaign_id}}/{action}",
            control,
            methods=["POST"],
            summary=f"{action.capitalize()} a campaign",
        )

    @api.get("/v1/campaigns/{campaign_id}/report", summary="One CSV row per recipient")
    async def report(campaign_id: str, token: ProducerToken = manager) -> StreamingResponse:
        await run_in_threadpool(found, campaign_id, token)

        def lines() -> Iterator[str]:
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, ["to", "jobId", "state", "wamid", "errorCode", "error"])
            writer.writeheader()
            for row in campaigns.report(campaign_id):
                writer.writerow(row)
                if buffer.tell() > 65536:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
            yield buffer.getvalue()

        return StreamingResponse(lines(), media_type="text/csv")

    return api
