"""Fault injection for gateway API calls: latency, 5xx, 429, resets, hangs, lost answers."""

from __future__ import annotations

import asyncio
import enum
import random
import socket
import struct

from aiohttp import web

from dispatcher.sandbox.config import Faults


class Fault(enum.Enum):
    NONE = "none"
    TIMEOUT = "timeout"
    RESET = "reset"
    SERVER_ERROR = "5xx"
    RATE_LIMITED = "429"
    LOST_RESPONSE = "lost_response"


def latency_s(faults: Faults, rng: random.Random) -> float:
    """One draw of the latency distribution: normal(latency, jitter), never negative."""
    if not faults.latency_ms and not faults.latency_jitter_ms:
        return 0.0
    return max(0.0, rng.gauss(faults.latency_ms, faults.latency_jitter_ms)) / 1000.0


def pick_fault(faults: Faults, rng: random.Random) -> Fault:
    """Bursts first (they are exact counts), then one draw across the rates."""
    if faults.burst_5xx:
        faults.burst_5xx -= 1
        return Fault.SERVER_ERROR
    if faults.burst_429:
        faults.burst_429 -= 1
        return Fault.RATE_LIMITED
    draw = rng.random()
    for rate, fault in (
        (faults.rate_timeout, Fault.TIMEOUT),
        (faults.rate_reset, Fault.RESET),
        (faults.rate_5xx, Fault.SERVER_ERROR),
        (faults.rate_429, Fault.RATE_LIMITED),
        (faults.rate_lost_response, Fault.LOST_RESPONSE),
    ):
        if draw < rate:
            return fault
        draw -= rate
    return Fault.NONE


async def hang(seconds: float) -> None:
    await asyncio.sleep(seconds)


def reset_connection(request: web.Request) -> web.StreamResponse:
    """Drop the connection with a TCP RST, so the client sees "connection reset by peer"."""
    transport = request.transport
    if transport is not None and not transport.is_closing():
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    # aiohttp treats a cancelled handler as a client that went away: nothing is written.
    raise asyncio.CancelledError
