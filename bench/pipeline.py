"""Pipeline figures: enqueue rates and end-to-end messages/s against the sandbox.

Starts a private redis-server, the sandbox gateway (``--latency-ms``, default 50) and
``--workers`` worker processes of ``--threads`` threads, then measures in one run:

- single ``send_template`` calls, one after another (enqueues/s), workers stopped;
- ``send_many`` (enqueues/s) and its ratio to the single calls;
- end to end, transactional: N jobs enqueued one by one while workers run, from the
  first enqueue to the last ``sent``;
- end to end, bulk: 2N jobs through ``send_many`` (batch messages), the same way.

``ceiling_msgs_per_s`` is workers x threads / latency: what the threads could do if
nothing but the gateway's latency mattered.

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

from tests.support.data import hello_line
from tests.support.processes import RedisProcess, SandboxProcess
from tests.support.stack import Stack


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
    # Meta's default 80/s per number would be the bottleneck: this measures the pipeline.
    stack = Stack(redis_server, sandbox, work, retry_base_delay_s=0.2, number_per_second=5000)
    results: dict[str, float | int] = {
        "jobs": args.jobs,
        "workers": args.workers,
        "threads": args.threads,
        "latency_ms": args.latency_ms,
    }
    try:
        with stack.dispatcher() as dispatcher:
            n = args.jobs
            # 1. Enqueue rates, nothing else running.
            started = time.perf_counter()
            for i in range(n):
                dispatcher.send_template(f"+1550{i:07d}", "+15550000001", "hello_world", "en")
            single_rate = n / (time.perf_counter() - started)
            lines = [hello_line(i, "+15550000002") for i in range(4 * n)]
            started = time.perf_counter()
            dispatcher.send_many(lines)
            many_rate = len(lines) / (time.perf_counter() - started)
            results["enqueue_single_per_s"] = round(single_rate)
            results["enqueue_send_many_per_s"] = round(many_rate)
            results["send_many_vs_single"] = round(many_rate / single_rate, 1)
            dispatcher.ledger.client.flushall()
            sandbox.reset()

            for _ in range(args.workers):
                stack.start_worker(threads=args.threads)
            stack.start_beat()
            time.sleep(3)  # workers up and polling

            # 2. Transactional path: jobs enqueued one at a time, workers running.
            started = time.monotonic()
            ids = [
                dispatcher.send_template(f"+1552{i:07d}", "+15550000001", "hello_world", "en")
                for i in range(n)
            ]
            wait_all(dispatcher, ids)
            results["e2e_transactional_msgs_per_s"] = round(n / (time.monotonic() - started))

            # 3. Bulk path: send_many (batch messages), workers running.
            lines = [hello_line(i, "+15550000002") for i in range(2 * n)]
            started = time.monotonic()
            bulk_ids = [r.job_id for r in dispatcher.send_many(lines)]  # type: ignore[union-attr]
            wait_all(dispatcher, bulk_ids)
            results["e2e_bulk_msgs_per_s"] = round(len(bulk_ids) / (time.monotonic() - started))
            results["gateway_records"] = len(sandbox.sent())
            results["ceiling_msgs_per_s"] = round(
                args.workers * args.threads / (args.latency_ms / 1000)
            )
    finally:
        stack.stop()
        sandbox.stop()
        redis_server.stop()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
