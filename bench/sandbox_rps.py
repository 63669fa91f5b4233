"""Requests per second the sandbox gateway serves at zero latency, with keep-alive.

Starts the sandbox in a subprocess and drives it from this process with aiohttp over
``--connections`` keep-alive connections, sending template messages (validation, auth,
recording: the full path of a send). The load generator shares the machine, so the
figure is a floor for the sandbox itself.

    python bench/sandbox_rps.py [--seconds 10] [--connections 64] [--port 8199]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
import urllib.request

import aiohttp

BODY = json.dumps(
    {
        "to": "917890000198",
        "fromPhoneNo": "+15550000001",
        "name": "hello_world",
        "language": "en",
    }
).encode()
HEADERS = {
    "X-API-Key": "waapi_sandbox",
    "X-API-Secret": "secr_sandbox",
    "Content-Type": "application/json",
}


async def drive(url: str, seconds: float, connections: int) -> tuple[int, int]:
    ok = bad = 0
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def loop() -> None:
            nonlocal ok, bad
            while time.monotonic() < deadline:
                async with session.post(url, data=BODY, headers=HEADERS) as resp:
                    await resp.read()
                    if resp.status == 200:
                        ok += 1
                    else:
                        bad += 1

        await asyncio.gather(*(loop() for _ in range(connections)))
    return ok, bad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--port", type=int, default=8199)
    args = parser.parse_args()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dispatcher", "sandbox", "--port", str(args.port)],
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{args.port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/_sandbox/health", timeout=1)  # noqa: S310
                break
            except OSError:
                time.sleep(0.1)
        url = f"{base}/api/v1/external/whatsapp-api/messages/template"
        asyncio.run(drive(url, 1.0, args.connections))  # warm up
        started = time.monotonic()
        ok, bad = asyncio.run(drive(url, args.seconds, args.connections))
        elapsed = time.monotonic() - started
    finally:
        proc.terminate()
        proc.wait()
    print(
        json.dumps(
            {
                "requests_per_s": round((ok + bad) / elapsed),
                "ok": ok,
                "not_ok": bad,
                "seconds": round(elapsed, 2),
                "connections": args.connections,
            }
        )
    )


if __name__ == "__main__":
    main()
