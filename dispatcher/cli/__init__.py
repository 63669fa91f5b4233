"""``waapi-dispatch``: the project's command line. Each command is an entry point: it is
the only place that reads settings from the environment and passes them down."""

from __future__ import annotations

import click

from dispatcher.cli.campaign_cmds import campaign
from dispatcher.cli.contact_cmds import contact
from dispatcher.cli.dlq_cmds import dlq
from dispatcher.cli.gateway_cmds import ping, sessions
from dispatcher.cli.jobs_cmds import job, jobs, send, send_many
from dispatcher.cli.limits_cmds import limits, numbers
from dispatcher.cli.sandbox_cmd import sandbox
from dispatcher.cli.serve_cmd import serve
from dispatcher.cli.status_cmd import status
from dispatcher.cli.templates_cmd import templates
from dispatcher.cli.up import up
from dispatcher.cli.worker_cmds import beat, worker


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="waapi-dispatcher")
def main() -> None:
    """Send WhatsApp messages through WAAPI from Redis-backed Celery queues."""


for command in (
    sandbox,
    ping,
    sessions,
    up,
    send,
    send_many,
    contact,
    job,
    jobs,
    worker,
    beat,
    limits,
    numbers,
    campaign,
    dlq,
    serve,
    status,
    templates,
):
    main.add_command(command)

__all__ = ["main"]
