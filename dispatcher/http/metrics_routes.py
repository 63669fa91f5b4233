"""``GET /metrics``: the dispatcher's Prometheus metrics (scope ``metrics``).

Every figure comes from Redis (see ``dispatcher/telemetry/metrics.py``), so any web
process answers for the whole fleet of workers; the web process adds its own process
metrics (CPU, memory, open files).
"""

from __future__ import annotations

import redis
from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.process_collector import ProcessCollector
from starlette.concurrency import run_in_threadpool

from config import ProducerToken, Settings
from dispatcher.http.auth import Authenticator
from dispatcher.ledger.connection import store_errors
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

    return api
