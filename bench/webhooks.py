"""Webhook receiver latency under load: p50/p99 of signed status deliveries.

Starts a private Redis and the HTTP service (uvicorn, one process), records ``--jobs``
sent jobs with wamids, then posts a delivered and a read status for each (and a repeat
of each delivery, which must be recognised) from ``--clients`` concurrent keep-alive
clients on the same machine.

    python bench/webhooks.py [--jobs 2000] [--clients 16]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dispatcher.sandbox.webhooks import status_payload
from tests.support.data import hello_body
from tests.support.processes import RedisProcess, SandboxProcess
from tests.support.stack import Stack

FROM = "+15550000001"


def delivery(wamid: str, status: str) -> bytes:
    return json.dumps(status_payload(FROM, wamid, "+15551230001", status)).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="waapi-wh-"))
    redis_server = RedisProcess.start(work / "redis")
    sandbox = SandboxProcess.start()
    stack = Stack(redis_server, sandbox, work)
    try:
        url = stack.start_serve() + "/v1/webhooks/waapi"
        with stack.dispatcher() as dispatcher:
            wamids = []
            for n in range(args.jobs):
                envelope = dispatcher.prepare("cloud", "template", hello_body(n, FROM))
                dispatcher.ledger.enqueue([envelope], mode="none")
                claim = dispatcher.ledger.claim(envelope.id)
                assert not isinstance(claim, str)
                dispatcher.ledger.finish(envelope.id, claim.attempt, "sent", wamid=f"w.{n}")
                wamids.append(f"w.{n}")
            posts = []
            for wamid in wamids:
                for status in ("delivered", "read"):
                    body = delivery(wamid, status)
                    headers = {
                        "X-Hub-Signature-256": "sha256="
                        + hmac.new(b"verify_sandbox", body, hashlib.sha256).hexdigest(),
                        "X-WAAPI-Delivery": uuid.uuid4().hex,
                        "Content-Type": "application/json",
                    }
                    posts.extend([(body, headers), (body, headers)])  # each delivered twice
            sessions: dict[int, requests.Session] = {}

            def send(item: tuple[bytes, dict[str, str]]) -> float:
                import threading

                session = sessions.setdefault(threading.get_ident(), requests.Session())
                started = time.perf_counter()
                response = session.post(url, data=item[0], headers=item[1], timeout=10)
                assert response.status_code == 200, response.text
                return time.perf_counter() - started

            started = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                latencies = sorted(pool.map(send, posts))
            elapsed = time.perf_counter() - started
            states = {dispatcher.job(j.id).state for j in dispatcher.jobs(limit=args.jobs)}
    finally:
        stack.stop()
        sandbox.stop()
        redis_server.stop()
    print(
        json.dumps(
            {
                "deliveries": len(latencies),
                "clients": args.clients,
                "per_s": round(len(latencies) / elapsed),
                "p50_ms": round(statistics.median(latencies) * 1000, 1),
                "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1),
                "max_ms": round(latencies[-1] * 1000, 1),
                "job_states": sorted(states),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
