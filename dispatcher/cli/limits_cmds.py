"""``waapi-dispatch limits`` and ``numbers pause|resume``: the limiter, seen and steered."""

from __future__ import annotations

import json
import time
from typing import Any, cast

import click

from config import Settings, normalize_e164
from dispatcher.cli.common import fail, settings_or_exit
from dispatcher.engine.limiter import Limit, Limiter
from dispatcher.ledger import schema
from dispatcher.ledger.connection import connect, store_errors
from dispatcher.ledger.reach import reach_use


def _limiter() -> Limiter:
    settings = settings_or_exit()
    if not settings.has_credentials:
        fail("no gateway credentials configured: no limits to show")
    return Limiter(connect(settings, max_connections=4), settings)


def _use(limiter: Limiter, limit: Limit, now_ms: float) -> dict[str, Any]:
    """How much of a limit is taken right now, from its theoretical arrival time."""
    raw = cast(bytes | None, limiter.client.get(schema.rate(limit.name)))
    ahead_ms = max(0.0, float(raw) - now_ms) if raw else 0.0
    return {
        "limit": limit.name,
        "rate": round(limit.rate, 3),
        "per_s": limit.period_s,
        "burst": limit.burst,
        "in_use": round(min(ahead_ms / limit.interval_ms, limit.burst + limit.rate), 1),
        "next_free_ms": round(max(0.0, ahead_ms - limit.tolerance_ms), 1),
    }


def _cooldown_ms(limiter: Limiter, name: str) -> int:
    return max(0, int(limiter.client.pttl(schema.cooldown(name))))


def _limits_report(limiter: Limiter, settings: Settings) -> dict[str, Any]:
    from dispatcher.job.envelope import JobEnvelope

    now_ms = time.time() * 1000
    paused = limiter.paused()
    report: dict[str, Any] = {"keys": [], "numbers": []}
    for key in settings.keys:
        probe = JobEnvelope(
            id="probe",
            channel=key.channels[0],
            type="text",
            to="+15550000000",
            from_phone_no=key.numbers[0],
            payload={"body": "."},
        )
        limits = [lim for lim in limiter.limits_for(probe) if lim.name.startswith("key:")]
        report["keys"].append(
            {
                "name": key.name,
                "per_minute": key.per_minute,
                "per_hour": key.per_hour,
                "limits": [_use(limiter, lim, now_ms) for lim in limits],
                "cooldown_ms": _cooldown_ms(limiter, f"key:{key.name}"),
            }
        )
        for number in key.numbers:
            probe = probe.model_copy(update={"from_phone_no": number})
            limits = [lim for lim in limiter.limits_for(probe) if lim.name.startswith("num:")]
            report["numbers"].append(
                {
                    "number": number,
                    "key": key.name,
                    "per_second": settings.number_rates.get(number),
                    "limits": [_use(limiter, lim, now_ms) for lim in limits],
                    "cooldown_ms": _cooldown_ms(limiter, f"num:{number}"),
                    "paused": paused.get(number),
                }
            )
    report["messagingLimits"] = [use.to_dict() for use in reach_use(limiter.client, settings)]
    return report


@click.command()
@click.option("--json", "as_json", is_flag=True)
def limits(as_json: bool) -> None:
    """Configured limits, current use, cooldowns and paused numbers."""
    limiter = _limiter()
    with store_errors():
        report = _limits_report(limiter, limiter.settings)
    if as_json:
        click.echo(json.dumps(report))
        return
    for key in report["keys"]:
        quota = f"{key['per_minute'] or '-'}/min, {key['per_hour'] or '-'}/h"
        cool = f"  COOLDOWN {key['cooldown_ms'] / 1000:.1f}s" if key["cooldown_ms"] else ""
        click.echo(f"key {key['name']}: {quota}{cool}")
        for use in key["limits"]:
            click.echo(
                f"  {use['limit']:<28} {use['in_use']:>7} in use, "
                f"next free in {use['next_free_ms']:.0f} ms"
            )
    for use in report["messagingLimits"]:
        if use["tier"] == "unlimited":
            click.echo(f"portfolio {use['portfolio']}: messaging limit unlimited")
            continue
        slides = f"; the oldest leaves at {use['nextFreeAt']}" if use["nextFreeAt"] else ""
        click.echo(
            f"portfolio {use['portfolio']}: messaging limit {use['tier']:,} recipients/24 h, "
            f"{use['reached24h']:,} reached, {use['remaining']:,} left "
            f"({use['bulkRemaining']:,} for bulk){slides}"
        )
    for number in report["numbers"]:
        flags = []
        if number["cooldown_ms"]:
            flags.append(f"COOLDOWN {number['cooldown_ms'] / 1000:.1f}s")
        if number["paused"]:
            flags.append(f"PAUSED ({number['paused']['reason']})")
        click.echo(
            f"number {number['number']} ({number['key']}): {number['per_second']}/s"
            + ("  " + "  ".join(flags) if flags else "")
        )
        for use in number["limits"]:
            click.echo(
                f"  {use['limit']:<28} {use['in_use']:>7} in use, "
                f"next free in {use['next_free_ms']:.0f} ms"
            )


@click.group()
def numbers() -> None:
    """Pause or resume sending numbers."""


def _number(value: str) -> str:
    try:
        return normalize_e164(value)
    except ValueError as exc:
        fail(f"NUMBER {exc}", 2)


@numbers.command()
@click.argument("number")
def resume(number: str) -> None:
    """Resume a paused number; its waiting jobs go now."""
    limiter, number = _limiter(), _number(number)
    with store_errors():
        count = limiter.resume(number)
    click.echo(f"{number} resumed; {count} waiting jobs released")


@numbers.command()
@click.argument("number")
@click.option("--reason", default="paused by hand", show_default=True)
def pause(number: str, reason: str) -> None:
    """Pause a number: its jobs wait (nothing is lost) until it is resumed."""
    limiter, number = _limiter(), _number(number)
    with store_errors():
        fresh = limiter.pause(number, reason)
    click.echo(f"{number} paused" if fresh else f"{number} was already paused")
