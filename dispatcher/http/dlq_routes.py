"""``/v1/dlq``: dead letters over HTTP (scope ``admin``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from config import ProducerToken
from dispatcher.errors import coded
from dispatcher.http.auth import Authenticator
from dispatcher.http.ingress import json_object
from dispatcher.http.responses import ApiError, ok
from dispatcher.ops.deadletters import DeadLetters


def router(dead: DeadLetters, auth: Authenticator) -> APIRouter:
    api = APIRouter(tags=["dead letters"])
    admin = Depends(auth.require("admin"))

    @api.get("/v1/dlq", summary="Dead jobs, newest first")
    async def listing(
        code: int | None = None, limit: int = 100, token: ProducerToken = admin
    ) -> JSONResponse:
        records = await run_in_threadpool(dead.list, code=code, limit=max(1, min(limit, 10_000)))
        return ok([r.to_dict() for r in records])

    @api.post("/v1/dlq/replay", summary="Replay dead jobs: {id} | {code} | {all: true}")
    async def replay(request: Request, token: ProducerToken = admin) -> JSONResponse:
        body = await json_object(request)
        chosen = [k for k in ("id", "code", "all") if body.get(k) not in (None, False)]
        if len(chosen) != 1:
            raise ApiError(400, error=coded("give exactly one of id, code or all"))

        def run() -> dict[str, str]:
            if "id" in chosen:
                ids = [str(body["id"])]
            else:
                code = body.get("code")
                ids = [
                    r.id
                    for r in dead.list(
                        code=code if isinstance(code, int) else None, limit=1_000_000
                    )
                ]
            done = {}
            for job_id in ids:
                try:
                    done[job_id] = dead.replay(job_id)
                except KeyError:
                    raise ApiError(404, error=f"no dead job {job_id}") from None
            return done

        return ok({"replayed": await run_in_threadpool(run)})

    return api
