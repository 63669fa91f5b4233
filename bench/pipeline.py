"""Pipeline figures: enqueue rates and end-to-end messages/s against the sandbox.

Starts a private redis-server, the sandbox gateway (``--latency-ms``, default 50) and
``--workers`` worker processes of ``--threads`` threads, then measures in one run:

- single ``send_template`` calls, one after another (enqueues/s);
- ``send_many`` (enqueues/s) and its ratio to the single calls;
- end to end, transactional: N jobs enqueued one by one, time until all are ``sent``;
- end to end, bulk: N jobs through ``send_many`` (batch messages), time until all sent.

    python bench/pipeline.py [--jobs 5000] [--workers 2] [--threads 32] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support import RedisProcess, SandboxProcess, Stack


def settled(dispatcher: object, ids: list[str]) -> int:
    client = dispatcher.ledger.client  # type: ignore[attr-defined]
    pipe = client.pipeline(transaction=False)
    for job_id in ids:
        pipe.hget(f"waapi:job:{job_id}", "state")
    return sum(1 for s in pipe.execute() if s in (b"sent", b"failed", b"dead", b"unknown"))


def wait_all(dispatcher: object, ids: list[str], timeout_s: float = 600) -> float:
    started = time.monotonic()
    while settled(dispatcher, ids) < len(ids):
        if time.monotonic() - started > timeout_s:
            raise SystemExit("timed out waiting for jobs to settle")
        time.sleep(0.05)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="waapi-bench-"))
    redis_server = RedisProcess.start(work / "redis")
    sandbox = SandboxProcess.start("--no-window", "--latency-ms", str(args.latency_ms))
    stack = Stack(redis_server, sandbox, work, retry_base_delay_s=0.2)
    results: dict[str, float | int] = {
        "jobs": args.jobs,
        "workers": args.workers,
        "threads": args.threads,
        "latency_ms": args.latency_ms,
    }
    try:
        with stack.dispatcher() as dispatcher:
            n = args.jobs
            started = time.perf_counter()
            ids = [
                dispatcher.send_template(f"+1555{i:07d}", "+15550000001", "hello_world", "en")
                for i in range(n)
            ]
            single_s = time.perf_counter() - started
            results["enqueue_single_per_s"] = round(n / single_s)
            lines = [
                {
                    "type": "template",
                    "to": f"+1556{i:07d}",
                    "fromPhoneNo": "+15550000002",
                    "name": "hello_world",
                    "language": "en",
                }
                for i in range(n * 4)
            ]
            started = time.perf_counter()
            bulk = dispatcher.send_many(lines)
            many_s = time.perf_counter() - started
            bulk_ids = [r.job_id for r in bulk]  # type: ignore[union-attr]
            results["enqueue_send_many_per_s"] = round(len(lines) / many_s)
            results["send_many_vs_single"] = round((len(lines) / many_s) / (n / single_s), 1)

            for _ in range(args.workers):
                stack.start_worker(threads=args.threads)
            stack.start_beat()
            # Transactional first: the tx lanes are polled alongside bulk ones, so time the
            # two sets separately by the moment each is fully settled.
            started = time.monotonic()
            tx_s = wait_all(dispatcher, ids)
            results["e2e_transactional_msgs_per_s"] = round(n / tx_s)
            bulk_s = wait_all(dispatcher, bulk_ids) + tx_s
            total = n + len(bulk_ids)
            results["e2e_all_msgs_per_s"] = round(total / (time.monotonic() - started))
            results["e2e_bulk_done_s"] = round(bulk_s, 2)
            results["gateway_records"] = len(sandbox.sent())
    finally:
        stack.stop()
        sandbox.stop()
        redis_server.stop()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
