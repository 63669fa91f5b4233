"""``waapi-dispatch templates``: what Meta said of each template (from its webhooks)."""

from __future__ import annotations

import click

from dispatcher.cli.common import echo_listing, fail, settings_or_exit
from dispatcher.errors import DispatcherError
from dispatcher.ledger.connection import connect
from dispatcher.ledger.templates import Templates


@click.command()
@click.option("--json", "as_json", is_flag=True)
def templates(as_json: bool) -> None:
    """What Meta said of each template lately: status, quality, reason (from webhooks)."""
    client = connect(settings_or_exit())
    try:
        found = Templates(client).all()
    except DispatcherError as exc:
        fail(str(exc))
    finally:
        client.close()
    echo_listing(
        found,
        as_json,
        lambda t: t.to_dict(),
        lambda t: "  ".join(
            (t.name, t.language or "-", t.status or "-", t.quality or "-", t.reason or "")
        ),
        empty="no template events seen yet",
    )
