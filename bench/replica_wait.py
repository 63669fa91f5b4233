"""What waiting for a replica costs an enqueue (REDIS_CONFIRM_REPLICAS).

A master, a replica and three Sentinels on loopback (tests/support/processes.py); single
enqueues through ``Dispatcher.send_text`` with the wait and without it, interleaved in
rounds so that the machine's noise falls on both alike.

    python bench/replica_wait.py [--rounds 6] [--per-round 500]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dispatcher.producer.api import Dispatcher
from tests.support.processes import SentinelRedis
from tests.support.stack import make_settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--per-round", type=int, default=500)
    args = parser.parse_args()
    group = SentinelRedis.start(Path(tempfile.mkdtemp(prefix="waapi-bench-")))
    try:
        producers = {
            n: Dispatcher(make_settings(group.url, redis_confirm_replicas=n)) for n in (0, 1)
        }
        seconds: dict[int, list[float]] = {0: [], 1: []}
        for round_ in range(args.rounds):
            for replicas, dispatcher in producers.items():
                for i in range(args.per_round):
                    started = time.perf_counter()
                    dispatcher.send_text(f"+1570{round_}{replicas}{i:05d}", "+15550000001", "hi")
                    seconds[replicas].append(time.perf_counter() - started)
        for replicas, taken in seconds.items():
            taken.sort()
            p50, p99 = taken[len(taken) // 2], taken[int(len(taken) * 0.99)]
            print(
                f"REDIS_CONFIRM_REPLICAS={replicas}: {len(taken)} enqueues, "
                f"p50 {p50 * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms"
            )
    finally:
        group.stop()


if __name__ == "__main__":
    main()
