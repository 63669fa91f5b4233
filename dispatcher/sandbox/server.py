"""The sandbox gateway application: routes, the fault and auth middleware, and ``run``."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from dispatcher.heap import settle_heap
from dispatcher.sandbox import control, endpoints
from dispatcher.sandbox.config import SandboxConfig
from dispatcher.sandbox.endpoints import authenticate, charge_quota
from dispatcher.sandbox.faults import Fault, hang, latency_s, pick_fault, reset_connection
from dispatcher.sandbox.instance import SANDBOX_KEY, Sandbox
from dispatcher.sandbox.replies import Reply, fail

API_PREFIX = "/api/v1/external"

log = logging.getLogger("dispatcher.sandbox")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def gateway_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Latency and faults first (as a network would), then auth and quota, then the route."""
    sb: Sandbox = request.app[SANDBOX_KEY]
    request["received_at"] = time.time()  # before the simulated latency: when it arrived
    counters = sb.state.counters
    counters["requests"] += 1
    faults = sb.config.faults
    delay = latency_s(faults, sb.rng)
    if delay:
        await asyncio.sleep(delay)
    fault = pick_fault(faults, sb.rng)
    if fault is not Fault.NONE:
        counters[f"fault_{fault.value}"] += 1
    if fault is Fault.TIMEOUT:
        await hang(faults.hang_s)
        return reset_connection(request)
    if fault is Fault.RESET:
        return reset_connection(request)
    try:
        if fault is Fault.SERVER_ERROR:
            raise fail(503, message="Service temporarily unavailable, please retry")
        if fault is Fault.RATE_LIMITED:
            raise fail(
                429, message="Rate limit exceeded, slow down", retry_after_s=faults.retry_after_s
            )
        request["key"] = authenticate(sb, request)
        charge_quota(sb, request["key"])
        response = await handler(request)
    except Reply as reply:
        response = reply.response
    counters[f"status_{response.status}"] += 1
    if fault is Fault.LOST_RESPONSE:
        return reset_connection(request)
    return response


def create_app(config: SandboxConfig) -> web.Application:
    sandbox = Sandbox(config)
    api_app = web.Application(middlewares=[gateway_middleware])
    api_app[SANDBOX_KEY] = sandbox
    api_app.add_routes(endpoints.ROUTES)

    async def not_found(request: web.Request) -> web.Response:
        return web.json_response({"success": False, "error": "Not found"}, status=404)

    api_app.router.add_route("*", "/{tail:.*}", not_found)

    app = web.Application()
    app[SANDBOX_KEY] = sandbox
    app.add_routes(control.ROUTES)
    app.add_subapp(API_PREFIX, api_app)

    async def start_sender(_: web.Application) -> None:
        await sandbox.sender.start()

    async def stop_sender(_: web.Application) -> None:
        await sandbox.sender.close()

    app.on_startup.append(start_sender)
    app.on_cleanup.append(stop_sender)
    return app


def run(config: SandboxConfig, host: str = "127.0.0.1", port: int = 8099) -> None:
    """Serve until interrupted (SIGINT/SIGTERM). The collector is set as in the
    dispatcher's processes (:mod:`dispatcher.heap`): with CPython's defaults its full
    collections held every request for 100-180 ms a few times a run, which the benchmark
    counted as the dispatcher's added latency."""
    app = create_app(config)
    settle_heap()
    web.run_app(
        app,
        host=host,
        port=port,
        access_log=None,
        backlog=2048,
        print=None,
        shutdown_timeout=1.0,
    )
