"""A campaign's plan: how many recipients the run adds to Meta's messaging limit, the
budget left now, and when the run should finish given every limit it meets.

The estimate plays the run forward in steps of its audience, in order: each step takes
its share of the run's throughput (the campaign's throttle, or its numbers' bulk share
of their per-second limits and their keys' quotas), only inside the send window, and
its new recipients wait for their portfolio's slots: a slot frees when a recipient
reached before leaves the 24-hour window, which is known for those reached already (the
ledger's ``reach:<portfolio>``) and follows from the plan for those the run adds. So a
run over the budget spreads across the following windows, as the limiter will make it.
It is an estimate: the adaptive throttle, retries and other traffic on the same numbers
are not foreseen.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import redis

from config import Settings
from dispatcher.campaigns.model import CampaignSpec, SendWindow
from dispatcher.ledger import schema
from dispatcher.ledger.connection import store_errors
from dispatcher.ledger.reach import MESSAGING_WINDOW_S, lane_budget

STEPS = 2000  # the audience is played forward in at most this many steps
READ_CHUNK = 5000


@dataclass(frozen=True)
class PortfolioPlan:
    portfolio: str
    tier: int
    new_recipients: int  # the run's recipients not reached in the last 24 hours
    budget_now: int  # what the bulk lane may still reach now

    def to_dict(self) -> dict[str, Any]:
        return {
            "portfolio": self.portfolio,
            "tier": self.tier,
            "newRecipients": self.new_recipients,
            "budgetNow": self.budget_now,
        }


def _whole_second_after(moment: datetime) -> datetime:
    """``moment`` rounded up to the second: an estimated finish shown to the second is
    never earlier than the estimate (truncating could show it before the run's start
    plus its windows)."""
    whole = moment.replace(microsecond=0)
    return whole if whole == moment else whole + timedelta(seconds=1)


@dataclass(frozen=True)
class Plan:
    at: datetime
    recipients: int
    rate_per_s: float
    portfolios: tuple[PortfolioPlan, ...]
    finish: datetime
    limited_by: str  # "throughput", "send window" or "messaging limit"

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(timespec="seconds"),
            "recipients": self.recipients,
            "ratePerS": round(self.rate_per_s, 3),
            "messagingLimits": [p.to_dict() for p in self.portfolios],
            "newRecipients": sum(p.new_recipients for p in self.portfolios),
            "budgetNow": sum(p.budget_now for p in self.portfolios) if self.portfolios else None,
            "estimatedFinish": _whole_second_after(self.finish).isoformat(timespec="seconds"),
            "limitedBy": self.limited_by,
        }


def run_rate_per_s(spec: CampaignSpec, settings: Settings) -> float:
    """Messages per second the run can get from its numbers and keys (bulk shares)."""
    bulk = settings.bulk_share
    rates = [sum(settings.usable_number_rate_per_s(n) * bulk for n in spec.numbers)]
    if spec.throttle_per_s is not None:
        rates.append(spec.throttle_per_s)
    keys = {key.name: key for key in map(settings.key_for_number, spec.numbers)}
    for quota, period_s in (("per_minute", 60.0), ("per_hour", 3600.0)):
        limits = [getattr(k, quota) for k in keys.values()]
        if all(limit is not None for limit in limits):
            rates.append(settings.usable_quota(sum(limits)) * bulk / period_s)
    return min(rates)


class _Clock:
    """Active time inside a daily send window, in epoch seconds."""

    def __init__(self, window: SendWindow | None, timezone: str) -> None:
        self.window = window
        self.zone = ZoneInfo(timezone)

    def _open_spans(self, from_s: float) -> Iterator[tuple[float, float]]:
        """The window's open spans (epoch seconds) from the day of ``from_s`` on."""
        assert self.window is not None
        day = datetime.fromtimestamp(from_s, self.zone).date() - timedelta(days=1)
        while True:
            start = datetime.combine(day, self.window.start, self.zone).timestamp()
            end_day = day if self.window.start < self.window.end else day + timedelta(days=1)
            end = datetime.combine(end_day, self.window.end, self.zone).timestamp()
            if end > from_s:
                yield max(start, from_s), end
            day += timedelta(days=1)

    def advance(self, from_s: float, seconds: float) -> float:
        """The moment ``seconds`` of sending after ``from_s`` (only open time counts)."""
        if self.window is None:
            return from_s + seconds
        for start, end in self._open_spans(from_s):
            if start + seconds <= end:
                return start + seconds
            seconds -= end - start
        raise AssertionError("unreachable")  # pragma: no cover


class _Slots:
    """When the i-th new recipient of one portfolio may be reached: once fewer than the
    budget are in the window (those reached before leave at known times; those the run
    reaches leave 24 hours after the plan reaches them)."""

    def __init__(self, budget: int, leaving_s: Sequence[float]) -> None:
        self.budget = budget
        self.leaving_s = leaving_s  # when each recipient in the window now leaves, in order
        self.own_counts: list[int] = []  # cumulative recipients the run reached, by step
        self.own_leaving_s: list[float] = []
        self.used = 0

    def time_of(self, i: int, now_s: float) -> float:
        j = len(self.leaving_s) + i - self.budget
        if j < 0:
            return now_s
        if j < len(self.leaving_s):
            return self.leaving_s[j]
        k = bisect.bisect_right(self.own_counts, j - len(self.leaving_s))
        return self.own_leaving_s[k]

    def take(self, count: int, at_s: float) -> None:
        self.used += count
        self.own_counts.append(self.used)
        self.own_leaving_s.append(at_s + MESSAGING_WINDOW_S)


def plan_run(
    client: redis.Redis,
    settings: Settings,
    campaign_id: str,
    spec: CampaignSpec,
    start: datetime,
    now: datetime | None = None,
) -> Plan:
    """The plan of a run of ``campaign_id`` starting at ``start``, from its stored
    audience and the portfolios' use ``now``."""
    now = now or datetime.now(UTC)
    now_s = now.timestamp()
    portfolios = []
    for number in spec.numbers:
        portfolio = settings.portfolio_of(number)
        limited = portfolio is not None and portfolio.tier != "unlimited"
        portfolios.append(portfolio if limited else None)
    names = sorted({p.name for p in portfolios if p is not None})
    since_ms = (now_s - MESSAGING_WINDOW_S) * 1000
    with store_errors():
        pipe = client.pipeline(transaction=False)
        for name in names:
            pipe.zrangebyscore(schema.reach(name), f"({since_ms}", "+inf", withscores=True)
        in_window = {
            name: dict(cast(list[tuple[bytes, float]], found))
            for name, found in zip(names, pipe.execute(), strict=True)
        }
        # Per row: the index of its portfolio + 1 when it is a new recipient, else 0.
        new_by_row = bytearray()
        offset = 0
        if not names:  # no messaging limit: only the audience's size matters
            size = client.llen(schema.campaign(campaign_id, "aud"))
            return _play(settings, spec, start, now, names, in_window, bytearray(size))
        while True:
            raw = cast(
                list[bytes],
                client.lrange(schema.campaign(campaign_id, "aud"), offset, offset + READ_CHUNK - 1),
            )
            if not raw:
                break
            rows = [json.loads(r)["to"] for r in raw]
            pipe = client.pipeline(transaction=False)
            for index, to in enumerate(rows, offset):
                number = spec.numbers[index % len(spec.numbers)]
                pipe.exists(schema.window(number, to))
            open_windows = pipe.execute()
            for index, (to, is_open) in enumerate(zip(rows, open_windows, strict=True), offset):
                portfolio = portfolios[index % len(spec.numbers)]
                new = (
                    portfolio is not None
                    and not is_open
                    and to.encode() not in in_window[portfolio.name]
                )
                new_by_row.append(names.index(portfolio.name) + 1 if new and portfolio else 0)
            offset += len(raw)
    return _play(settings, spec, start, now, names, in_window, new_by_row)


def _play(
    settings: Settings,
    spec: CampaignSpec,
    start: datetime,
    now: datetime,
    names: list[str],
    in_window: dict[str, dict[bytes, float]],
    new_by_row: bytearray,
) -> Plan:
    now_s = now.timestamp()
    rate = run_rate_per_s(spec, settings)
    tiers = {}
    for name in names:
        portfolio = next(p for p in settings.messaging_portfolios if p.name == name)
        tiers[name] = cast(int, portfolio.tier)
    slots = [
        _Slots(
            lane_budget(tiers[name], "bulk", settings.transactional_reserve),
            sorted(ms / 1000 + MESSAGING_WINDOW_S for ms in in_window[name].values()),
        )
        for name in names
    ]
    clock = _Clock(spec.window, spec.schedule.timezone)
    total = len(new_by_row)
    # A step never needs more slots than a budget holds (or its wait could not be known).
    step = max(1, min([math.ceil(total / STEPS), *(slot.budget for slot in slots)]))
    t = clock.advance(max(start.timestamp(), now_s), 0.0)
    first = t
    waited = False
    for begin in range(0, total, step):
        chunk = new_by_row[begin : begin + step]
        ready = t
        for index, slot in enumerate(slots):
            count = chunk.count(index + 1)
            if count:
                ready = max(ready, slot.time_of(slot.used + count - 1, now_s))
        if ready > t:
            waited = True
            t = clock.advance(ready, 0.0)
        for index, slot in enumerate(slots):
            count = chunk.count(index + 1)
            if count:
                slot.take(count, t)
        t = clock.advance(t, len(chunk) / rate)
    if waited:
        limited_by = "messaging limit"
    elif spec.window is not None and t - first > total / rate + 1:
        limited_by = "send window"
    else:
        limited_by = "throughput"
    plans = tuple(
        PortfolioPlan(
            name,
            tiers[name],
            new_by_row.count(index + 1),
            max(0, slots[index].budget - len(in_window[name])),
        )
        for index, name in enumerate(names)
    )
    return Plan(now, total, rate, plans, datetime.fromtimestamp(t, UTC), limited_by)
