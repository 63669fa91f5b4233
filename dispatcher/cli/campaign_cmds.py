"""``waapi-dispatch campaign ...``: create, list, show, pause, resume, cancel, report, watch."""

from __future__ import annotations

import csv
import json
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError
from rich.console import RenderableType
from rich.progress import Progress
from rich.text import Text

from dispatcher.campaigns import Campaigns, CampaignSpec, rows
from dispatcher.campaigns.plan import run_rate_per_s
from dispatcher.campaigns.store import IN_FLIGHT
from dispatcher.cli.common import (
    counted,
    dispatcher_or_exit,
    echo_listing,
    fail,
    reader_or_exit,
)
from dispatcher.errors import InvalidRequest
from dispatcher.gateway.validation import problems_of

SENT = ("sent", "delivered", "read")


def _campaigns(queues: bool = False) -> Campaigns:
    """The campaigns; commands that queue (create, resume) need gateway credentials,
    the others only Redis."""
    return Campaigns(dispatcher_or_exit() if queues else reader_or_exit())


PAST = {"pause": "paused", "resume": "resumed", "cancel": "cancelled"}


def _get(campaigns: Campaigns, campaign_id: str) -> dict[str, Any]:
    info = campaigns.get(campaign_id)
    if info is None:
        fail(f"no campaign {campaign_id}")
    return info


def _summary(info: dict[str, Any]) -> str:
    funnel = dict(info["funnel"])
    cost_micros = funnel.pop("cost_micros", None)
    sent = sum(funnel.get(s, 0) for s in SENT)
    counts = ", ".join(f"{k} {v}" for k, v in sorted(funnel.items()))
    cost = f"  estimated cost {cost_micros / 1_000_000:.4f}" if cost_micros else ""
    if info.get("estimatedCostPerRun") is not None:
        cost += f"  estimate per run {info['estimatedCostPerRun']:.4f}"
    return (
        f"{info['id']}  {info['state']:<10} {info['name']!r}  run {info['run']}  "
        f"sent {sent}/{info['recipients']}" + (f"  [{counts}]" if counts else "") + cost
    )


def _minute(iso: str) -> str:
    """An ISO time as ``2026-12-04 19:44 UTC``: short enough for 80 columns."""
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _plan_lines(plan: dict[str, Any] | None) -> list[str]:
    """The run's plan: new recipients against each messaging limit, the estimated finish."""
    if plan is None:
        return []
    lines = [
        f"  plan       finish ~{_minute(plan['estimatedFinish'])} at {plan['ratePerS']:g}/s",
        f"             limited by {plan['limitedBy']}, as of {_minute(plan['at'])}",
    ]
    for limit in plan["messagingLimits"]:
        lines.append(
            f"  messaging  {limit['newRecipients']:,} new recipients for portfolio "
            f"{limit['portfolio']} (tier {limit['tier']:,}); {limit['budgetNow']:,} left now"
        )
    return lines


@click.group()
def campaign() -> None:
    """Scheduled broadcast campaigns."""


@campaign.command()
@click.argument("spec_file", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--audience",
    "audience_file",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="CSV with a 'to' column, or JSONL with 'to' per line.",
)
@click.option("--json", "as_json", is_flag=True)
def create(spec_file: Path, audience_file: Path, as_json: bool) -> None:
    """Create a campaign from a JSON spec and an audience file."""
    try:
        spec = CampaignSpec.model_validate_json(spec_file.read_text(encoding="utf-8"))
    except ValidationError as exc:
        fail("; ".join(str(p) for p in problems_of(exc)), 2)
    fmt = "csv" if audience_file.suffix.lower() == ".csv" else "jsonl"
    campaigns = _campaigns(queues=True)
    started = time.perf_counter()
    try:
        with audience_file.open(encoding="utf-8", newline="") as stream:
            created = campaigns.create(spec, rows(stream, fmt))
    except InvalidRequest as exc:
        fail(str(exc), 2)
    result = {
        "campaignId": created.campaign_id,
        "recipients": created.recipients,
        "refused": [{"line": r.line, "reason": r.reason} for r in created.refused],
        "nextRun": created.next_run.isoformat() if created.next_run else None,
        "uploadSeconds": round(time.perf_counter() - started, 2),
        "plan": created.plan,
    }
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(
        f"{created.campaign_id}: {counted(created.recipients, 'recipient')}, first run "
        f"{result['nextRun']}, uploaded in {result['uploadSeconds']} s"
    )
    for line in _plan_lines(created.plan):
        click.echo(line)
    for refused in created.refused[:20]:
        click.echo(f"line {refused.line}: {refused.reason}", err=True)
    if len(created.refused) > 20:
        more = counted(len(created.refused) - 20, "more refused line")
        click.echo(f"... and {more}", err=True)


@campaign.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_(as_json: bool) -> None:
    """Campaigns, newest first."""
    found = _campaigns().recent()
    echo_listing(
        found,
        as_json,
        lambda c: {k: v for k, v in c.items() if k != "spec"},
        _summary,
        empty="no campaigns",
    )


@campaign.command()
@click.argument("campaign_id")
@click.option("--json", "as_json", is_flag=True)
def show(campaign_id: str, as_json: bool) -> None:
    """A campaign: state, schedule, funnel."""
    info = _get(_campaigns(), campaign_id)
    if as_json:
        click.echo(json.dumps(info))
        return
    click.echo(_summary(info))
    click.echo(f"  next run   {info['nextRun'] or 'none'}")
    click.echo(f"  fanned out {info['fannedOut']} of {info['recipients']}")
    if info["reason"]:
        click.echo(f"  reason     {info['reason']}")
    for line in _plan_lines(info["plan"]):
        click.echo(line)


def _control(action: str, campaign_id: str) -> None:
    campaigns = _campaigns(queues=action == "resume")
    _get(campaigns, campaign_id)
    done = getattr(campaigns, action)(campaign_id)
    click.echo(f"{campaign_id} {PAST[action]}" if done else f"{campaign_id}: nothing to {action}")
    if not done:
        raise SystemExit(1)


@campaign.command()
@click.argument("campaign_id")
def pause(campaign_id: str) -> None:
    """Stop sending within a second; queued jobs wait, nothing is lost."""
    _control("pause", campaign_id)


@campaign.command()
@click.argument("campaign_id")
def resume(campaign_id: str) -> None:
    """Continue from where it stopped."""
    _control("resume", campaign_id)


@campaign.command()
@click.argument("campaign_id")
def cancel(campaign_id: str) -> None:
    """Mark what is not sent yet 'cancelled'."""
    _control("cancel", campaign_id)


@campaign.command()
@click.argument("campaign_id")
@click.option("--csv", "as_csv", is_flag=True, help="One row per recipient, as CSV.")
@click.option("--json", "as_json", is_flag=True)
def report(campaign_id: str, as_csv: bool, as_json: bool) -> None:
    """The funnel, or one row per recipient (--csv)."""
    campaigns = _campaigns()
    info = _get(campaigns, campaign_id)
    if as_csv:
        writer = csv.DictWriter(sys.stdout, ["to", "jobId", "state", "wamid", "errorCode", "error"])
        writer.writeheader()
        for row in campaigns.report(campaign_id):
            writer.writerow(row)
        return
    if as_json:
        click.echo(
            json.dumps(
                {
                    "id": campaign_id,
                    "run": info["run"],
                    "recipients": info["recipients"],
                    "funnel": info["funnel"],
                }
            )
        )
        return
    click.echo(_summary(info))


class _TwoLineProgress(Progress):
    """rich's progress bar, each task's ``detail`` on a line of its own below it."""

    def get_renderables(self) -> Iterator[RenderableType]:
        yield self.make_tasks_table(self.tasks)
        for task in self.tasks:
            yield Text(task.fields.get("detail", ""), overflow="fold")


@campaign.command()
@click.argument("campaign_id")
@click.option("--interval", default=1.0, show_default=True, type=float)
def watch(campaign_id: str, interval: float) -> None:
    """A live progress bar with the send rate and an estimated finish; the state and
    the funnel on the line below, so that it reads at 80 columns."""
    from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
    from rich.table import Column

    campaigns = _campaigns()
    info = _get(campaigns, campaign_id)
    cap = run_rate_per_s(campaigns.spec(campaign_id), campaigns.dispatcher.settings)
    for line in _plan_lines(info["plan"]):
        click.echo(line.strip())
    with _TwoLineProgress(
        TextColumn(
            "[bold]{task.description}",
            table_column=Column(max_width=16, no_wrap=True, overflow="ellipsis"),
        ),
        BarColumn(bar_width=30),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[rate]:.1f}/s"),
        TimeRemainingColumn(),
    ) as progress:
        task = progress.add_task(info["name"], total=info["recipients"], rate=0.0, detail="")
        last, last_t = 0, time.monotonic()
        while True:
            info = _get(campaigns, campaign_id)
            funnel = info["funnel"]
            settled = sum(v for k, v in funnel.items() if ":" not in k and k not in IN_FLIGHT)
            now = time.monotonic()
            rate = (settled - last) / max(now - last_t, 1e-6)
            last, last_t = settled, now
            left = info["recipients"] - settled
            eta = ""
            plan = info["plan"]
            if left and plan and plan["limitedBy"] == "messaging limit":
                eta = f"messaging limit: done ~{_minute(plan['estimatedFinish'])} "
            elif left and info["state"] == "running":
                eta = f"done in ~{left / cap / 60:.1f} min at the limits ({cap:.0f}/s) "
            detail = f"{info['state']} {eta}" + " ".join(
                f"{k}={v}" for k, v in sorted(funnel.items()) if ":" not in k
            )
            progress.update(task, completed=settled, rate=rate, detail=detail)
            if info["state"] in ("done", "cancelled") or (
                info["state"] == "scheduled" and info["run"] > 0 and settled
            ):
                break
            time.sleep(interval)
