"""``waapi-dispatch status``: one screen for whoever is on call."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from dispatcher.cli.common import fail, settings_or_exit
from dispatcher.errors import StoreUnavailable
from dispatcher.ledger.connection import connect
from dispatcher.ops.status import current_status


def _eta(seconds: int | None) -> str:
    return "-" if seconds is None else str(timedelta(seconds=seconds))


def render(report: dict[str, Any], console: Console) -> None:
    numbers = Table(title="numbers", title_justify="left", box=None, pad_edge=False)
    for column in ("number", "key", "state", "tx queued", "bulk queued", "sending", "retry",
                   "unknown", "sent/s", "failed/s"):  # fmt: skip
        numbers.add_column(
            column, justify="left" if column in ("number", "key", "state") else "right"
        )
    for row in report["numbers"]:
        tx, bulk = row["lanes"]["transactional"], row["lanes"]["bulk"]
        if row["paused"]:
            state = "[red]paused[/red]"
        elif row["cooldownS"]:
            state = f"[yellow]cooling {row['cooldownS']} s[/yellow]"
        else:
            state = "[green]ok[/green]"
        numbers.add_row(
            row["number"],
            row["key"],
            state,
            str(tx["queued"] + tx["scheduled"]),
            str(bulk["queued"] + bulk["scheduled"]),
            str(tx["sending"] + bulk["sending"]),
            str(tx["retry_wait"] + bulk["retry_wait"]),
            str(tx["unknown"] + bulk["unknown"]),
            f"{row['sentPerS']:g}",
            f"{row['failedPerS']:g}",
        )
    console.print(numbers)
    for row in report["numbers"]:
        if row["paused"]:
            console.print(f"{row['number']} [red]paused[/red]: {row['paused'].get('reason', '')}")
    for limit in report["messagingLimits"]:
        if limit["tier"] == "unlimited":
            console.print(f"portfolio {limit['portfolio']}: unlimited messaging limit")
            continue
        console.print(
            f"portfolio {limit['portfolio']}: {limit['reached24h']:,} of {limit['tier']:,} "
            f"recipients in 24 h; {limit['remaining']:,} left ({limit['bulkRemaining']:,} "
            "for bulk)"
        )
    billable = report["costs"]["billable"]
    if billable:
        counts = ", ".join(f"{c} {n:,}" for c, n in sorted(billable.items()))
        cost = sum(report["costs"]["estimatedCost"].values())
        priced = f"; estimated cost {cost:.4f}" if report["costs"]["estimatedCost"] else ""
        console.print(f"billable messages: {counts}{priced}")
    cooling = [k for k in report["keys"] if k["cooldownS"]]
    for key in cooling:
        console.print(f"key {key['name']}: [yellow]cooling down {key['cooldownS']} s[/yellow]")
    if report["campaigns"]:
        campaigns = Table(title="\ncampaigns", title_justify="left", box=None, pad_edge=False)
        for column in ("id", "state", "settled", "audience", "per s", "eta"):
            campaigns.add_column(column, justify="left" if column in ("id", "state") else "right")
        for row in report["campaigns"]:
            campaigns.add_row(
                row["id"],
                row["state"],
                f"{row['settled']:,}",
                f"{row['audience']:,}",
                f"{row['perS']:g}",
                _eta(row["etaS"]),
            )
        console.print(campaigns)
    beat = report["beatSeenAgoS"]
    beat_text = "never" if beat < 0 else f"{beat:.0f} s ago"
    if report["beatLeader"]:
        beat_text += f" (leader {report['beatLeader']})"
    console.print(
        f"\nworkers alive {report['workersAlive']}   beat seen {beat_text}   "
        f"dead letters {report['deadLetters']}   "
        f"ambiguous sends {report['ambiguousSends']}   rejected messages "
        f"{report['rejectedMessages']}   (rates over {report['sampleS']:g} s)"
    )


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.option("--sample-s", default=2.0, show_default=True, help="Seconds to measure rates over.")
@click.option(
    "--watch",
    is_flag=True,
    help="Show it again after every sample until Ctrl-C (with --json: a JSON line each).",
)
def status(as_json: bool, sample_s: float, watch: bool) -> None:
    """Numbers, queue depths, send rates, cooldowns, pauses, campaigns with ETA.
    Works without gateway credentials (then without numbers): it reads Redis only."""
    settings = settings_or_exit()
    client = connect(settings, max_connections=4)
    # Wide enough for the tables when piped (rich assumes 80 columns then).
    console = Console(width=None if sys.stdout.isatty() else 120)
    try:
        while True:
            try:
                report = current_status(client, settings, sample_s=sample_s)
            except StoreUnavailable as exc:
                fail(f"Redis is not reachable: {exc}")
            if as_json:
                click.echo(json.dumps(report, indent=None if watch else 2))
            else:
                if watch and console.is_terminal:
                    console.clear()
                render(report, console)
            if not watch:
                return
            sys.stdout.flush()
    except KeyboardInterrupt:
        return  # Ctrl-C ends a watch: not an error
    finally:
        client.close()
