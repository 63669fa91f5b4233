"""``waapi-dispatch worker`` and ``beat``: the Celery processes, with the right options.

Both replace this process with ``celery -A tasks ...`` (signals then reach Celery
directly), after working out the queues from settings.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from config import normalize_e164
from dispatcher.cli.common import fail, settings_or_exit
from dispatcher.job.queues import LANES, MAINTENANCE_QUEUE, queues_for


def _worker_argv(queues: list[str], concurrency: int, loglevel: str, name: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "tasks",
        "worker",
        "-P",
        "threads",
        "-c",
        str(concurrency),
        "-Q",
        ",".join(queues),
        "-n",
        name,
        "-l",
        loglevel,
        "--without-gossip",
        "--without-mingle",
    ]


@click.command()
@click.option("--numbers", help="Only these sending numbers (comma-separated E.164).")
@click.option(
    "--lanes",
    default=",".join(LANES),
    show_default=True,
    help="Lanes to serve, transactional first.",
)
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(1, 512),
    help="Celery threads (default WORKER_CONCURRENCY, 8).",
)
@click.option(
    "--maintenance/--no-maintenance",
    default=True,
    show_default=True,
    help="Also run the pump/sweeper ticks that beat schedules.",
)
@click.option("--loglevel", "-l", default=None, help="Log level (default LOG_LEVEL, INFO).")
@click.option("--name", "-n", help="Node name (default waapi-<pid>@<host>).")
def worker(
    numbers: str | None,
    lanes: str,
    concurrency: int | None,
    maintenance: bool,
    loglevel: str | None,
    name: str | None,
) -> None:
    """Run a worker for every configured number, or a subset (a worker group)."""
    settings = settings_or_exit()
    if not settings.has_credentials:
        fail(
            "no gateway credentials: set WAAPI_API_KEY, WAAPI_API_SECRET and "
            "WAAPI_FROM_NUMBERS (or run `waapi-dispatch up`)"
        )
    wanted = None
    if numbers:
        try:
            wanted = [normalize_e164(n) for n in numbers.split(",") if n.strip()]
        except ValueError as exc:
            fail(f"--numbers: {exc}", 2)
        unknown = sorted(set(wanted) - set(settings.from_numbers))
        if unknown:
            fail(f"--numbers: {', '.join(unknown)} not bound to any configured key", 2)
    lane_list = [lane.strip() for lane in lanes.split(",") if lane.strip()]
    if not set(lane_list) <= set(LANES):
        fail(f"--lanes: must be among {', '.join(LANES)}", 2)
    queues = queues_for(settings, wanted, lane_list)
    if maintenance:
        queues.append(MAINTENANCE_QUEUE)
    threads = concurrency or settings.worker_concurrency
    argv = _worker_argv(
        queues, threads, loglevel or settings.log_level, name or f"waapi-{os.getpid()}@%h"
    )
    # Replace this process: Celery gets the signals (noqa: argv is ours, no shell).
    os.execve(sys.executable, argv, {**os.environ, "WAAPI_WORKER_THREADS": str(threads)})  # noqa: S606


@click.command()
@click.option(
    "--schedule-file",
    default="var/celerybeat-schedule",
    show_default=True,
    type=click.Path(path_type=Path),
)
@click.option("--loglevel", "-l", default=None, help="Log level (default LOG_LEVEL, INFO).")
def beat(schedule_file: Path, loglevel: str | None) -> None:
    """Run Celery beat: every second, the pump, the sweeper and the campaigns tick."""
    settings = settings_or_exit()
    schedule_file.parent.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "tasks",
        "beat",
        "-s",
        str(schedule_file),
        "-l",
        loglevel or settings.log_level,
    ]
    os.execv(sys.executable, argv)  # noqa: S606
