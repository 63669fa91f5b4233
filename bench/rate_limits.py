"""Rate limits held across workers: this dispatcher beside naive Celery ``rate_limit``.

The sandbox enforces a per-key quota of ``--quota`` requests per minute (rolling
window, 429 with Retry-After) at low latency. Each contender gets ``--workers`` worker
processes and enough jobs to run at the quota for ``--minutes``; per 60 s window we
report achieved/allowed and the 429s the sandbox returned, and the most sends seen in
any rolling 60 s.

    python bench/rate_limits.py [--quota 1200] [--minutes 2] [--workers 3]
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

from bench.naive_celery import running_workers
from tests.support.data import hello_body, hello_line
from tests.support.processes import RedisProcess, SandboxProcess
from tests.support.stack import Stack

ROOT = Path(__file__).resolve().parent.parent


def windows(
    sandbox: SandboxProcess, samples: list[tuple[float, int]], quota: int, minutes: int
) -> dict[str, object]:
    times = sorted(r["time"] for r in sandbox.sent())
    if not times:
        return {"windows": [], "sent": 0}
    t0 = times[0]
    out = []
    for w in range(minutes):
        start, end = t0 + 60 * w, t0 + 60 * (w + 1)
        sent = sum(1 for t in times if start <= t < end)
        before = max((c for t, c in samples if t <= start), default=0)
        after = max((c for t, c in samples if t <= end), default=0)
        out.append(
            {
                "window": w + 1,
                "sent": sent,
                "achieved_vs_allowed": round(sent / quota, 3),
                "sandbox_429s": after - before,
            }
        )
    peak, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - 60:
            j += 1
        peak = max(peak, i - j + 1)
    return {"windows": out, "sent": len(times), "max_in_any_rolling_60s": peak}


def watch(sandbox: SandboxProcess, seconds: float) -> list[tuple[float, int]]:
    samples, deadline = [], time.time() + seconds
    while time.time() < deadline:
        samples.append((time.time(), sandbox.stats()["counters"].get("quota_429", 0)))
        time.sleep(1)
    return samples


def run_dispatcher(args: argparse.Namespace, work: Path) -> dict[str, object]:
    redis_server = RedisProcess.start(work / "redis-d")
    sandbox = SandboxProcess.start(
        "--no-window", "--latency-ms", "5", "--per-minute", str(args.quota)
    )
    keys = [
        {
            "name": "bench",
            "key": "waapi_sandbox",
            "secret": "secr_sandbox",
            "numbers": ["+15550000001"],
            "per_minute": args.quota,
        }
    ]
    stack = Stack(redis_server, sandbox, work, waapi_keys=json.dumps(keys), number_per_second=1000)
    try:
        with stack.dispatcher() as dispatcher:
            lines = [hello_line(n) for n in range(int(args.quota * (args.minutes + 0.5)))]
            dispatcher.send_many(lines, lane="transactional")
            for _ in range(args.workers):
                stack.start_worker()  # WORKER_CONCURRENCY as shipped
            stack.start_beat()
            samples = watch(sandbox, 60 * args.minutes + 15)
        return windows(sandbox, samples, args.quota, args.minutes)
    finally:
        stack.stop()
        sandbox.stop()
        redis_server.stop()


def run_naive(args: argparse.Namespace, work: Path) -> dict[str, object]:
    redis_server = RedisProcess.start(work / "redis-n")
    sandbox = SandboxProcess.start(
        "--no-window", "--latency-ms", "5", "--per-minute", str(args.quota)
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "NAIVE_BROKER": redis_server.url,
        "NAIVE_GATEWAY": sandbox.base_url,
        "NAIVE_RATE_LIMIT": f"{args.quota}/m",
    }
    try:
        from bench.naive_celery import app

        app.conf.broker_url = redis_server.url
        with app.producer_or_acquire() as producer:
            for n in range(int(args.quota * (args.minutes + 0.5))):
                app.send_task(
                    "naive.send",
                    kwargs={"body": hello_body(n)},
                    producer=producer,
                )
        with running_workers(env, args.workers, 16):
            samples = watch(sandbox, 60 * args.minutes + 15)
        return windows(sandbox, samples, args.quota, args.minutes)
    finally:
        sandbox.stop()
        redis_server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quota", type=int, default=1200, help="per minute, at the sandbox")
    parser.add_argument("--minutes", type=int, default=2)
    parser.add_argument("--workers", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="waapi-rl-"))
    result = {
        "quota_per_minute": args.quota,
        "workers": args.workers,
        "dispatcher": run_dispatcher(args, work),
        "naive_celery_rate_limit": run_naive(args, work),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
