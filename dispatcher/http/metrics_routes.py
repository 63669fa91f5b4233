"""``GET /metrics``: the dispatcher's Prometheus metrics (scope ``metrics``); and
``GET /v1/status``: the same figures as ``waapi-dispatch status --json`` (scope ``read``).

Every figure comes from Redis (see ``dispatcher/telemetry/metrics.py``), so any web
process answers for the whole fleet of workers; the web process adds its own process
metrics (CPU, memory, open files).
"""

from __future__ import annotations

from typing import Any

import redis
from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.process_collector import ProcessCollector
from starlette.concurrency import run_in_threadpool

from config import ProducerToken, Settings
from dispatcher.http.auth import Authenticator
from dispatcher.http.responses import ok
from dispatcher.ledger.connection import store_errors
from dispatcher.ops.status import current_status
from dispatcher.telemetry.metrics import LedgerCollector


def router(client: redis.Redis, settings: Settings, auth: Authenticator) -> APIRouter:
    api = APIRouter()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LedgerCollector(client, settings))
    ProcessCollector(registry=registry)
    scraper = Depends(auth.require("metrics"))

    def scrape() -> bytes:
        with store_errors():
            return generate_latest(registry)

    @api.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    async def metrics(token: ProducerToken = scraper) -> Response:
        return Response(await run_in_threadpool(scrape), media_type=CONTENT_TYPE_LATEST)

    reader = Depends(auth.require("read"))

    def report(sample_s: float) -> dict[str, Any]:
        return current_status(client, settings, sample_s=sample_s)

    @api.get(
        "/v1/status",
        tags=["operations"],
        summary="Numbers, queues, rates, cooldowns, pauses, campaigns: the status screen",
    )
    async def status(
        token: ProducerToken = reader,
        sample_s: float = Query(1.0, alias="sampleS", ge=0.2, le=10.0),
    ) -> JSONResponse:
        """Rates are measured over ``sampleS`` seconds (the answer waits that long)."""
        return ok(await run_in_threadpool(report, sample_s))

    return api
