"""One look at the whole dispatcher: numbers, queues, rates, cooldowns, pauses,
campaigns with their ETA, dead letters. Built from two readings of the same metrics
``/metrics`` serves (a short interval apart, for the rates), so the status screen and
the dashboards can never disagree."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import redis

from config import Settings
from dispatcher.engine.limiter import Limiter
from dispatcher.job.queues import LANES
from dispatcher.ledger.connection import store_errors
from dispatcher.ledger.states import TERMINAL_STATES
from dispatcher.telemetry.metrics import LedgerCollector

IN_FLIGHT = ("queued", "scheduled", "sending", "retry_wait", "unknown")


@dataclass(frozen=True)
class Reading:
    """One scrape: each metric's samples as (labels, value), by metric name (the screen
    asks hundreds of questions of one reading; each looks only at its own metric)."""

    at: float
    samples: dict[str, list[tuple[dict[str, str], float]]]

    def series(self, metric: str) -> list[tuple[dict[str, str], float]]:
        return self.samples.get(metric, [])

    def total(self, metric: str, /, **labels: str) -> float:
        return sum(
            value
            for have, value in self.series(metric)
            if all(have.get(k) == v for k, v in labels.items())
        )

    def labels(self, metric: str, label: str) -> list[str]:
        return sorted({have[label] for have, _ in self.series(metric)})


def read(collector: LedgerCollector, clock: Callable[[], float] = time.monotonic) -> Reading:
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in collector.collect():
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return Reading(clock(), samples)


def _settled(reading: Reading, campaign: str) -> float:
    return sum(
        reading.total("waapi_campaign_recipients", campaign=campaign, state=s)
        for s in TERMINAL_STATES
    )


def _per_s(before: Reading, after: Reading, value: Callable[[Reading], float]) -> float:
    elapsed = after.at - before.at
    return max(0.0, (value(after) - value(before)) / elapsed) if elapsed > 0 else 0.0


def _reached(number: str, *states: str) -> Callable[[Reading], float]:
    """Jobs of ``number`` that ever entered one of ``states``, in a reading."""

    def value(reading: Reading) -> float:
        return sum(reading.total("waapi_jobs_total", number=number, state=s) for s in states)

    return value


def _settled_of(campaign: str) -> Callable[[Reading], float]:
    def value(reading: Reading) -> float:
        return _settled(reading, campaign)

    return value


def current_status(client: redis.Redis, settings: Settings, *, sample_s: float) -> dict[str, Any]:
    """The status now, from Redis (``status`` and ``GET /v1/status`` alike); a Redis
    error is StoreUnavailable."""
    with store_errors():
        paused = Limiter(client, settings).paused()
        return status_report(LedgerCollector(client, settings), settings, paused, sample_s=sample_s)


def status_report(
    collector: LedgerCollector,
    settings: Settings,
    paused: dict[str, dict[str, Any]],
    *,
    sample_s: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """The status as JSON-ready data; rates are measured over ``sample_s`` seconds."""
    before = read(collector)
    sleep(sample_s)
    now = read(collector)
    numbers = []
    for key in settings.keys:
        for number in key.numbers:
            lanes = {}
            for lane in LANES:
                lanes[lane] = {
                    state: int(
                        now.total("waapi_jobs_in_flight", number=number, lane=lane, state=state)
                    )
                    for state in IN_FLIGHT
                }
                lanes[lane]["messages"] = int(
                    now.total("waapi_queue_messages", number=number, lane=lane)
                )
            cooldown_s = now.total("waapi_cooldown_remaining_seconds", scope="number", name=number)
            numbers.append(
                {
                    "number": number,
                    "key": key.name,
                    "limitPerS": settings.number_rate_per_s(number),
                    "paused": paused.get(number),
                    "cooldownS": round(cooldown_s, 1),
                    "lanes": lanes,
                    "sentPerS": round(_per_s(before, now, _reached(number, "sent")), 1),
                    "failedPerS": round(_per_s(before, now, _reached(number, "failed", "dead")), 1),
                }
            )
    keys_ = [
        {
            "name": key.name,
            "perMinute": key.per_minute,
            "perHour": key.per_hour,
            "cooldownS": round(
                now.total("waapi_cooldown_remaining_seconds", scope="key", name=key.name), 1
            ),
        }
        for key in settings.keys
    ]
    return {
        "numbers": numbers,
        "keys": keys_,
        "campaigns": list(_campaigns(before, now)),
        "messagingLimits": list(_messaging_limits(now)),
        "costs": _costs(now),
        "workersAlive": int(now.total("waapi_workers_alive")),
        "beatSeenAgoS": round(now.total("waapi_beat_last_seen_seconds"), 1),
        "beatLeader": next(iter(now.labels("waapi_beat_leader", "beat")), None),
        "deadLetters": int(now.total("waapi_dead_letters")),
        "ambiguousSends": int(now.total("waapi_ledger_events_total", event="ambiguous")),
        "rejectedMessages": int(now.total("waapi_ledger_events_total", event="rejected")),
        "sampleS": sample_s,
    }


def _costs(now: Reading) -> dict[str, Any]:
    """Billable messages by pricing category, from the status webhooks, and their
    estimated cost where PRICES gives one (totals since counting began)."""
    categories = now.labels("waapi_billable_messages_total", "category")
    priced = now.labels("waapi_estimated_cost_total", "category")
    return {
        "billable": {
            c: int(now.total("waapi_billable_messages_total", category=c)) for c in categories
        },
        "estimatedCost": {
            c: round(now.total("waapi_estimated_cost_total", category=c), 6) for c in priced
        },
    }


def _messaging_limits(now: Reading) -> Iterable[dict[str, Any]]:
    """Each portfolio's messaging limit: its tier, recipients reached in 24 h, what each
    lane may still reach."""
    for portfolio in now.labels("waapi_messaging_limit_tier", "portfolio"):
        tier = int(now.total("waapi_messaging_limit_tier", portfolio=portfolio))
        left = "waapi_messaging_limit_remaining"
        yield {
            "portfolio": portfolio,
            "tier": tier if tier >= 0 else "unlimited",
            "reached24h": int(now.total("waapi_messaging_limit_reached", portfolio=portfolio)),
            "remaining": int(now.total(left, portfolio=portfolio, lane="transactional"))
            if tier >= 0
            else None,
            "bulkRemaining": int(now.total(left, portfolio=portfolio, lane="bulk"))
            if tier >= 0
            else None,
        }


def _campaigns(before: Reading, now: Reading) -> Iterable[dict[str, Any]]:
    for campaign in now.labels("waapi_campaign_state", "campaign"):
        state = next(
            (
                labels["state"]
                for labels, value in now.series("waapi_campaign_state")
                if labels["campaign"] == campaign and value
            ),
            "",
        )
        audience = now.total("waapi_campaign_recipients", campaign=campaign, state="audience")
        settled = _settled(now, campaign)
        rate = _per_s(before, now, _settled_of(campaign))
        remaining = max(0.0, audience - settled)
        yield {
            "id": campaign,
            "state": state,
            "audience": int(audience),
            "fannedOut": int(
                now.total("waapi_campaign_recipients", campaign=campaign, state="fanned_out")
            ),
            "settled": int(settled),
            "perS": round(rate, 1),
            "etaS": round(remaining / rate) if rate > 0 else None,
        }
