"""A 1,000,000-recipient campaign: upload time, Redis memory, fan-out rate, bounded RSS.

Writes a JSONL audience of ``--recipients`` lines, creates the campaign on a private
Redis (upload time, Redis memory before and after), then lets the campaign tick fan out
``--fan-out`` jobs with ``queueAhead`` as large (fan-out rate, Redis bytes per queued
job) while measuring this process's peak RSS: it must grow with the chunk, not with the
audience. No workers run: what is measured is the dispatcher's side.

    python bench/campaign_million.py [--recipients 1000000] [--fan-out 100000]
                                     [--listpack-value 1024]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis

from dispatcher.campaigns import Campaigns, rows
from dispatcher.producer.api import Dispatcher
from tests.support.data import campaign_spec
from tests.support.processes import RedisProcess
from tests.support.stack import make_settings


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--fan-out", type=int, default=100_000)
    parser.add_argument(
        "--listpack-value",
        type=int,
        default=0,
        help="redis hash-max-listpack-value (0: Redis's default, 64)",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="waapi-million-"))
    audience = work / "audience.jsonl"
    with audience.open("w") as out:
        for i in range(args.recipients):
            out.write(f'{{"to":"+1{2000000000 + i}","name":"N{i}","awb":{i}}}\n')
    extra = ("--hash-max-listpack-value", str(args.listpack_value)) if args.listpack_value else ()
    server = RedisProcess.start(work / "redis", *extra)
    client = redis.Redis.from_url(server.url)
    dispatcher = Dispatcher(make_settings(server.url, number_per_second=5000), client)
    campaigns = Campaigns(dispatcher)
    spec = campaign_spec(name="million", queueAhead=args.fan_out)
    try:
        memory_before = client.info("memory")["used_memory"]
        rss_before = rss_mb()
        started = time.perf_counter()
        with audience.open() as stream:
            created = campaigns.create(spec, rows(stream, "jsonl"))
        upload_s = time.perf_counter() - started
        memory_audience = client.info("memory")["used_memory"] - memory_before
        rss_upload = rss_mb()
        started = time.perf_counter()
        queued = 0
        while queued < args.fan_out:
            step = campaigns.tick()["queued"]
            if step == 0 and queued:
                break
            queued += step
        fan_out_s = time.perf_counter() - started
        memory_jobs = client.info("memory")["used_memory"] - memory_before - memory_audience
        result = {
            "recipients": created.recipients,
            "upload_s": round(upload_s, 1),
            "upload_per_s": round(created.recipients / upload_s),
            "redis_bytes_audience_per_recipient": round(memory_audience / created.recipients),
            "fanned_out": queued,
            "fan_out_per_s": round(queued / fan_out_s),
            "redis_bytes_per_queued_job": round(memory_jobs / max(queued, 1)),
            "process_rss_mb": {
                "start": round(rss_before),
                "after_upload": round(rss_upload),
                "after_fan_out": round(rss_mb()),
            },
        }
    finally:
        server.stop()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
