"""Helpers shared by CLI commands: settings loading, the producer, one-line failures."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

import click

from config import ConfigError, Settings, load_settings
from dispatcher.errors import DispatcherError, InvalidRequest
from dispatcher.producer.api import Dispatcher


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(code)


def settings_or_exit(**overrides: Any) -> Settings:
    """Settings from the environment; a wrong value ends the command with its name."""
    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(2) from None


def dispatcher_or_exit() -> Dispatcher:
    """The producer, for commands that queue jobs; without credentials, say which."""
    settings = settings_or_exit()
    if not settings.has_credentials:
        fail(
            "no gateway credentials: set WAAPI_API_KEY, WAAPI_API_SECRET and "
            "WAAPI_FROM_NUMBERS (the values `waapi-dispatch up` prints for the sandbox)"
        )
    return Dispatcher.from_settings(settings)


def reader_or_exit() -> Dispatcher:
    """The ledger's reader, for commands that only look (jobs, campaigns, dead letters,
    status): they need Redis, not gateway credentials."""
    return Dispatcher.from_settings(settings_or_exit())


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``1 job``, ``2 jobs``: a count with its noun in the right number."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"


@contextmanager
def queueing() -> Iterator[Dispatcher]:
    """The producer for one command that queues: a refusal ends the command with its
    problems (exit 2), any other dispatcher error with its message (exit 1)."""
    dispatcher = dispatcher_or_exit()
    try:
        yield dispatcher
    except InvalidRequest as exc:
        fail(refusal_text(exc), 2)
    except DispatcherError as exc:
        fail(str(exc))
    finally:
        dispatcher.close()


def refusal_text(exc: InvalidRequest) -> str:
    """Every problem of a refused job, on one line: ``field: rule; field: rule``."""
    return "; ".join(str(p) for p in exc.problems)


T = TypeVar("T")


def echo_listing(
    items: Sequence[T],
    as_json: bool,
    as_dict: Callable[[T], Any],
    line: Callable[[T], str],
    empty: str | None = None,
) -> None:
    """A listing: with ``--json`` one JSON array, else a line per item (``empty`` when
    there is none)."""
    if as_json:
        click.echo(json.dumps([as_dict(item) for item in items]))
        return
    for item in items:
        click.echo(line(item))
    if not items and empty is not None:
        click.echo(empty)


def error_text(error: Mapping[str, Any] | None) -> str:
    """A job's last error on one line: Meta's code (or the HTTP status), then its words."""
    if not error:
        return ""
    return f"{error.get('code') or error.get('status') or ''} {error.get('message') or ''}"
