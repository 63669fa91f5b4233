"""Job lookup and health endpoints."""

from __future__ import annotations

import re
import time
from functools import partial
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from config import ProducerToken, normalize_e164
from dispatcher.errors import coded
from dispatcher.http.auth import Authenticator, check_number
from dispatcher.http.responses import ApiError, ok
from dispatcher.ledger import schema
from dispatcher.ledger.events import EventLog
from dispatcher.ledger.jobs import JobFilter
from dispatcher.ledger.states import STATES
from dispatcher.ledger.templates import Templates
from dispatcher.producer.api import Dispatcher

# The most jobs one page of a search by recipient reads (the ledger indexes jobs by
# time and number, not by recipient).
RECIPIENT_SCAN_MAX = 50_000
STREAM_ID = re.compile(r"\d{1,20}-\d{1,20}")


def _e164(name: str, value: str | None) -> str | None:
    """A phone number of the query in E.164, or a 400 naming the parameter."""
    if value is None:
        return None
    try:
        return normalize_e164(value)
    except ValueError as exc:
        raise ApiError(400, error=coded(f"{name} {exc}")) from None


def router(dispatcher: Dispatcher, auth: Authenticator) -> APIRouter:
    api = APIRouter()
    reader = Depends(auth.require("read"))

    @api.get("/v1/jobs/{job_id}", tags=["jobs"], summary="One job: state, wamid, error, times")
    async def job(job_id: str, token: ProducerToken = reader) -> JSONResponse:
        record = await run_in_threadpool(dispatcher.job, job_id)
        if record is None:
            raise ApiError(404, error="Job not found")
        check_number(token, record.from_phone_no)
        return ok(record.to_dict())

    @api.get(
        "/v1/jobs",
        tags=["jobs"],
        summary="Recent jobs, newest first",
        description="Filtered by `state`, `number`, `campaign` and `to` (the recipient). "
        f"A search by recipient reads at most the newest {RECIPIENT_SCAN_MAX:,} jobs per "
        "page (`scanned` says how many); `nextCursor` reads on.",
    )
    async def jobs(
        state: str | None = None,
        number: str | None = None,
        campaign: str | None = None,
        to: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        token: ProducerToken = reader,
    ) -> JSONResponse:
        if state is not None and state not in STATES:
            raise ApiError(400, error=coded(f"state must be one of {', '.join(STATES)}"))
        if not 1 <= limit <= 1000:
            raise ApiError(400, error=coded("limit must be between 1 and 1000"))
        number, to = _e164("number", number), _e164("to", to)
        if number is not None:
            check_number(token, number)
        before = None
        if cursor is not None:
            if not cursor.isdigit():
                raise ApiError(400, error=coded("cursor must be the nextCursor of a page"))
            before = int(cursor)
        page = await run_in_threadpool(
            dispatcher.ledger.search,
            JobFilter(state, number, campaign, to, token.numbers),
            limit=limit,
            before_ms=before,
            scan_max=RECIPIENT_SCAN_MAX if to is not None else None,
        )
        data = [r.to_dict() for r in page.records]
        # The page says where it stopped (None: the index was read to its end).
        stopped = page.next_before_ms
        extra = {"scanned": page.scanned} if to is not None else {}
        return ok(data, nextCursor=None if stopped is None else str(stopped), **extra)

    @api.get(
        "/v1/events",
        tags=["jobs"],
        summary="What just happened: the ledger's events, oldest first",
        description="Every state change of every job (and a few notes: a worker lost, a "
        "number paused). Without `after`, the newest `limit`; with `after` (the `id` of "
        "the last event seen, or `last` of a page), those that came since. A token "
        "bound to numbers sees only theirs.",
    )
    async def events(
        after: str | None = None, limit: int = 50, token: ProducerToken = reader
    ) -> JSONResponse:
        if not 1 <= limit <= 1000:
            raise ApiError(400, error=coded("limit must be between 1 and 1000"))
        if after is not None and not STREAM_ID.fullmatch(after):
            raise ApiError(400, error=coded("after must be an event id such as 1764000000000-0"))
        log = EventLog(dispatcher.ledger.client)
        found = await run_in_threadpool(
            log.latest if after is None else partial(log.after, after), limit
        )
        last = found[-1].id if found else after
        mine = [e for e in found if token.numbers is None or e.number in token.numbers]
        return ok([e.to_dict() for e in mine], last=last)

    @api.get("/v1/templates", tags=["templates"], summary="What Meta said of each template")
    async def templates(token: ProducerToken = reader) -> JSONResponse:
        found = await run_in_threadpool(Templates(dispatcher.ledger.client).all)
        return ok([t.to_dict() for t in found], count=len(found))

    @api.get("/healthz", tags=["health"], summary="The process is alive")
    async def healthz() -> dict[str, Any]:
        return {"ok": True}

    @api.get("/readyz", tags=["health"], summary="Redis reachable and workers seen recently")
    async def readyz() -> JSONResponse:
        def check() -> tuple[bool, int]:
            client = dispatcher.ledger.client
            client.ping()
            since = time.time() - dispatcher.settings.worker_seen_s
            return True, int(client.zcount(schema.WORKERS, since, "+inf"))

        try:
            redis_ok, workers = await run_in_threadpool(check)
        except Exception as exc:
            return JSONResponse(
                {"ok": False, "redis": False, "error": type(exc).__name__}, status_code=503
            )
        ready = redis_ok and workers > 0
        return JSONResponse(
            {"ok": ready, "redis": redis_ok, "workers": workers}, status_code=200 if ready else 503
        )

    return api
