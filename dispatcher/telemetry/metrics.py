"""Prometheus metrics, read from Redis at scrape time.

Workers run as many processes on many machines; counters kept in each process would
need a multiprocess directory per host and still miss the other hosts. The ledger's
scripts already touch Redis for every change of a job, so they keep the counters there
too, in the same atomic step (no extra round trip; the numbers agree with the ledger by
construction), and this collector turns them into metrics when ``/metrics`` is scraped.

Labels stay bounded: sending numbers and lanes (configured), states, Meta codes or HTTP
statuses, limit kinds, and campaigns that are running, paused or scheduled. Never a
recipient or a job id.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any, cast

import redis
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from config import Settings
from dispatcher.job.queues import LANES, queue_name
from dispatcher.ledger import schema
from dispatcher.ledger.reach import reach_use

LIVE_CAMPAIGN_STATES = ("scheduled", "running", "paused")

# The ledger's labelled hashes (``m:<name>``, fields ``label|label...``), each one metric
# family: Redis hash, family type, metric name, help, labels, divisor (1000: ms to s).
LABELLED: tuple[tuple[str, type[Any], str, str, list[str], float], ...] = (
    (
        "jobs",
        CounterMetricFamily,
        "waapi_jobs",
        "Jobs that entered each state (sending: attempts; retry_wait: retries).",
        ["number", "lane", "state"],
        1.0,
    ),
    (
        "now",
        GaugeMetricFamily,
        "waapi_jobs_in_flight",
        "Jobs now in each unsettled state (queued, scheduled, sending, retry_wait, unknown).",
        ["number", "lane", "state"],
        1.0,
    ),
    (
        "errors",
        CounterMetricFamily,
        "waapi_job_errors",
        "Failed attempts by Meta code (or HTTP status; 'transport' for no answer).",
        ["number", "code"],
        1.0,
    ),
    (
        "waits",
        CounterMetricFamily,
        "waapi_limiter_waits",
        "Admissions that waited: sleep (slot reserved), park (job put back), paused, "
        "throttle, reach (Meta's messaging limit).",
        ["number", "kind"],
        1.0,
    ),
    (
        "waited",
        CounterMetricFamily,
        "waapi_limiter_wait_seconds",
        "Time jobs were told to wait by the rate limiter.",
        ["number"],
        1000.0,
    ),
    (
        "cooldowns",
        CounterMetricFamily,
        "waapi_cooldowns",
        "Cooldowns started (key: ApiCallLimited; number: ThroughputLimited; pair: "
        "PairRateLimited, as in dispatcher.errors).",
        ["scope"],
        1.0,
    ),
    (
        "billable",
        CounterMetricFamily,
        "waapi_billable_messages",
        "Messages Meta's status webhooks said are billable, by pricing category (once each).",
        ["number", "category"],
        1.0,
    ),
    (
        "cost",
        CounterMetricFamily,
        "waapi_estimated_cost",
        "Estimated cost of billable messages from PRICES (currency units), by category.",
        ["number", "category"],
        1_000_000.0,
    ),
    (
        "webhooks",
        CounterMetricFamily,
        "waapi_webhook_unrecognised",
        "Webhook parts not acted on (object, field, status value, key), also on the stream.",
        ["kind"],
        1.0,
    ),
)


def _decode(raw: Mapping[bytes, bytes]) -> dict[str, float]:
    return {k.decode(): float(v) for k, v in raw.items()}


def histogram(
    name: str, documentation: str, labels: list[str]
) -> tuple[HistogramMetricFamily, Any]:
    """A histogram family and a function adding one labelled series from a Redis hash
    of per-bucket counts in ms (``"<upper bound>"`` or ``"+Inf"``) plus ``sum``."""
    family = HistogramMetricFamily(name, documentation, labels=labels)

    def add(label_values: list[str], raw: dict[str, float]) -> None:
        total_ms = raw.pop("sum", 0.0)
        bounds = sorted((float(b), n) for b, n in raw.items() if b != "+Inf")
        running, buckets = 0.0, []
        for bound_ms, n in bounds:
            running += n
            buckets.append((f"{bound_ms / 1000:g}", running))
        running += raw.get("+Inf", 0.0)
        buckets.append(("+Inf", running))
        family.add_metric(label_values, buckets, sum_value=total_ms / 1000)

    return family, add


class LedgerCollector(Collector):
    """Every dispatcher metric, from one pipelined read of Redis per scrape."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.client = client
        self.settings = settings

    def collect(self) -> Iterator[Metric]:
        numbers = self.settings.from_numbers
        key_names = [k.name for k in self.settings.keys]
        queues = [
            (channel, number, lane, queue_name(channel, number, lane))
            for key in self.settings.keys
            for channel in key.channels
            for number in key.numbers
            for lane in LANES
        ]
        pipe = self.client.pipeline(transaction=False)
        for name, *_ in LABELLED:
            pipe.hgetall(schema.metric(name))
        for lane in LANES:
            pipe.hgetall(schema.metric(f"gw:{lane}"))
            pipe.hgetall(schema.metric(f"e2s:{lane}"))
        pipe.hgetall(schema.STATS)
        pipe.zcard(schema.DEAD)
        pipe.zcount(schema.WORKERS, time.time() - self.settings.worker_seen_s, "+inf")
        for *_, queue in queues:
            pipe.llen(queue)
        for number in numbers:
            pipe.exists(schema.paused(number))
            pipe.pttl(schema.cooldown(f"num:{number}"))
        for name in key_names:
            pipe.pttl(schema.cooldown(f"key:{name}"))
        pipe.get(schema.BEAT_SEEN)
        pipe.get(schema.BEAT_LEADER)
        pipe.zrevrange(schema.CAMPAIGNS, 0, 199)
        replies = iter(pipe.execute())

        for _, family_type, metric, documentation, labels, divisor in LABELLED:
            family = family_type(metric, documentation, labels=labels)
            for field, value in _decode(next(replies)).items():
                family.add_metric(field.split("|"), value / divisor)
            yield family
        gateway, add_gateway = histogram(
            "waapi_gateway_latency_seconds", "Gateway call duration.", ["lane"]
        )
        to_sent, add_to_sent = histogram(
            "waapi_enqueue_to_sent_seconds", "From enqueue to the gateway's answer.", ["lane"]
        )
        for lane in LANES:
            add_gateway([lane], _decode(next(replies)))
            add_to_sent([lane], _decode(next(replies)))
        yield gateway
        yield to_sent
        ledger = CounterMetricFamily(
            "waapi_ledger_events",
            "Ledger events: ambiguous sends, reconciled, rejected messages, republished, ...",
            labels=["event"],
        )
        for name, value in _decode(next(replies)).items():
            ledger.add_metric([name], value)
        yield ledger
        yield GaugeMetricFamily("waapi_dead_letters", "Jobs dead and kept.", next(replies))
        yield GaugeMetricFamily(
            "waapi_workers_alive", "Workers with a recent heartbeat.", next(replies)
        )
        depth = GaugeMetricFamily(
            "waapi_queue_messages",
            "Messages waiting in each queue (a bulk batch message holds up to 100 jobs).",
            labels=["channel", "number", "lane"],
        )
        for channel, number, lane, _ in queues:
            depth.add_metric([channel, number, lane], next(replies))
        yield depth
        paused = GaugeMetricFamily(
            "waapi_number_paused", "1 while the number is paused.", labels=["number"]
        )
        cooling = GaugeMetricFamily(
            "waapi_cooldown_remaining_seconds",
            "Time left on a key's or number's cooldown.",
            labels=["scope", "name"],
        )
        for number in numbers:
            paused.add_metric([number], next(replies))
            cooling.add_metric(["number", number], max(0, cast(int, next(replies))) / 1000)
        for name in key_names:
            cooling.add_metric(["key", name], max(0, cast(int, next(replies))) / 1000)
        yield paused
        yield cooling
        beat = next(replies)
        yield GaugeMetricFamily(
            "waapi_beat_last_seen_seconds",
            "Seconds since beat's tick last ran (-1: never).",
            time.time() - float(beat) if beat else -1.0,
        )
        leader = next(replies)
        leading = GaugeMetricFamily(
            "waapi_beat_leader",
            "1 for the beat that sends the schedule (host:pid); none while no beat leads.",
            labels=["beat"],
        )
        if leader:
            leading.add_metric([leader.decode()], 1)
        yield leading
        yield from self._campaigns([c.decode() for c in next(replies)])
        yield from self._messaging_limits()

    def _messaging_limits(self) -> Iterator[Metric]:
        uses = reach_use(self.client, self.settings)
        tier = GaugeMetricFamily(
            "waapi_messaging_limit_tier",
            "Meta's messaging limit of a business portfolio (recipients in 24 h; -1: unlimited).",
            labels=["portfolio"],
        )
        reached = GaugeMetricFamily(
            "waapi_messaging_limit_reached",
            "Recipients of business-initiated sends in the last 24 hours.",
            labels=["portfolio"],
        )
        remaining = GaugeMetricFamily(
            "waapi_messaging_limit_remaining",
            "Recipients a lane may still reach before the window slides.",
            labels=["portfolio", "lane"],
        )
        for use in uses:
            tier.add_metric([use.portfolio], -1 if use.tier is None else use.tier)
            reached.add_metric([use.portfolio], use.reached)
            if use.remaining is not None and use.bulk_remaining is not None:
                remaining.add_metric([use.portfolio, "transactional"], use.remaining)
                remaining.add_metric([use.portfolio, "bulk"], use.bulk_remaining)
        yield tier
        yield reached
        yield remaining

    def _campaigns(self, campaign_ids: list[str]) -> Iterator[Metric]:
        pipe = self.client.pipeline(transaction=False)
        for campaign_id in campaign_ids:
            pipe.hmget(schema.campaign(campaign_id), "state", "run", "total", "cursor")
        live = []
        for campaign_id, (state, run, total, cursor) in zip(
            campaign_ids, pipe.execute(), strict=True
        ):
            if state is not None and state.decode() in LIVE_CAMPAIGN_STATES:
                live.append((campaign_id, state.decode(), int(run or 0), total, cursor))
        pipe = self.client.pipeline(transaction=False)
        for campaign_id, _, run, _, _ in live:
            pipe.hgetall(schema.campaign(campaign_id, f"f:{run}"))
        funnels = pipe.execute()
        recipients = GaugeMetricFamily(
            "waapi_campaign_recipients",
            "Recipients of a live campaign's current run: audience, fanned_out, and by state.",
            labels=["campaign", "state"],
        )
        for (campaign_id, _, _, total, cursor), funnel in zip(live, funnels, strict=True):
            recipients.add_metric([campaign_id, "audience"], float(total or 0))
            recipients.add_metric([campaign_id, "fanned_out"], float(cursor or 0))
            for state, value in _decode(funnel).items():
                recipients.add_metric([campaign_id, state], value)
        yield recipients
        running = GaugeMetricFamily(
            "waapi_campaign_state", "1 for a live campaign's state.", labels=["campaign", "state"]
        )
        for campaign_id, state, _, _, _ in live:
            running.add_metric([campaign_id, state], 1)
        yield running
