"""``waapi-dispatch serve``: the HTTP ingress and webhook receiver on uvicorn."""

from __future__ import annotations

import click
import uvicorn

from dispatcher.cli.common import settings_or_exit


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int, help="uvicorn worker processes.")
@click.option("--log-level", default="warning", show_default=True)
def serve(host: str, port: int, workers: int, log_level: str) -> None:
    """Serve the HTTP API (enqueue, job lookup, webhooks; docs at /docs)."""
    settings_or_exit()  # a wrong setting stops here, named, before uvicorn starts
    uvicorn.run(
        "dispatcher.http.service:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        log_config=None,  # our format (app_from_env sets it up), not uvicorn's
        access_log=False,
    )
