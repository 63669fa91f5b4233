"""``waapi-dispatch dlq list|show|replay``: the dead letters."""

from __future__ import annotations

import json

import click

from dispatcher.cli.common import (
    counted,
    dispatcher_or_exit,
    echo_listing,
    error_text,
    fail,
    reader_or_exit,
)
from dispatcher.ledger.records import JobRecord
from dispatcher.ops.deadletters import DeadLetters


def _dead() -> DeadLetters:
    """Listing and showing need Redis only; a replay queues, and needs credentials."""
    return DeadLetters(reader_or_exit().ledger)


@click.group()
def dlq() -> None:
    """Jobs whose retries ran out: list, show, replay."""


@dlq.command("list")
@click.option("--code", type=int, help="Only those whose last error had this code or status.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--json", "as_json", is_flag=True)
def list_(code: int | None, limit: int, as_json: bool) -> None:
    """Dead jobs, newest first."""
    records = _dead().list(code=code, limit=limit)
    echo_listing(
        records,
        as_json,
        JobRecord.to_dict,
        lambda r: (
            f"{r.id}  {r.type:<9} {r.from_phone_no or '':<14} att={r.attempts} "
            f"{error_text(r.error)}"
        ),
        empty="no dead letters" + (f" with code {code}" if code is not None else ""),
    )


@dlq.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True)
def show(job_id: str, as_json: bool) -> None:
    """One dead job."""
    dead = _dead()
    record = dead.ledger.get(job_id)
    if record is None or record.state != "dead":
        fail(f"no dead job {job_id}")
    click.echo(json.dumps(record.to_dict(), indent=None if as_json else 2))


@dlq.command()
@click.option("--id", "job_id", help="Replay this job.")
@click.option("--code", type=int, help="Replay every dead job with this code or status.")
@click.option("--all", "replay_all", is_flag=True, help="Replay every dead job.")
@click.option("--json", "as_json", is_flag=True)
def replay(job_id: str | None, code: int | None, replay_all: bool, as_json: bool) -> None:
    """Queue dead jobs again; each replay is linked to its original."""
    if sum(x is not None and x is not False for x in (job_id, code, replay_all or None)) != 1:
        fail("give exactly one of --id, --code or --all", 2)
    dead = DeadLetters(dispatcher_or_exit().ledger)
    ids = [job_id] if job_id else [r.id for r in dead.list(code=code, limit=1_000_000)]
    replayed = {}
    for original in ids:
        try:
            replayed[original] = dead.replay(original)
        except KeyError:
            fail(f"no dead job {original}")
    if as_json:
        click.echo(json.dumps({"replayed": replayed}))
        return
    for original, new in replayed.items():
        click.echo(f"{original} -> {new}")
    click.echo(f"replayed {counted(len(replayed), 'job')}")
