"""``waapi-dispatch templates``: what Meta said of each template (from its webhooks)."""

from __future__ import annotations

import json

import click

from dispatcher.cli.common import fail, settings_or_exit
from dispatcher.errors import DispatcherError
from dispatcher.ledger.connection import connect
from dispatcher.ledger.templates import Templates


@click.command()
@click.option("--json", "as_json", is_flag=True)
def templates(as_json: bool) -> None:
    """What Meta said of each template lately: status, quality, reason (from webhooks)."""
    client = connect(settings_or_exit().redis_url)
    try:
        found = Templates(client).all()
    except DispatcherError as exc:
        fail(str(exc))
    finally:
        client.close()
    if as_json:
        click.echo(json.dumps([t.to_dict() for t in found]))
        return
    for t in found:
        columns = (t.name, t.language or "-", t.status or "-", t.quality or "-", t.reason or "")
        click.echo("  ".join(columns))
    if not found:
        click.echo("no template events seen yet")
