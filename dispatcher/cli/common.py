"""Helpers shared by CLI commands: settings loading and one-line failures."""

from __future__ import annotations

from typing import Any, NoReturn

import click

from config import ConfigError, Settings, load_settings


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
