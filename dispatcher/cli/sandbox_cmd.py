"""``waapi-dispatch sandbox``: run the stand-in gateway."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click
from pydantic import ValidationError

from dispatcher.cli.common import fail
from dispatcher.gateway.validation import problems_of
from dispatcher.sandbox import (
    API_PREFIX,
    SandboxConfig,
    SandboxKey,
    SandboxQrSession,
    SandboxTemplate,
    run,
)


def _template(spec: str) -> SandboxTemplate:
    """NAME[:LANG[:COMPONENT=N,...]], e.g. ``order_shipped:en:body=2``."""
    name, _, rest = spec.partition(":")
    language, _, params = rest.partition(":")
    counts = {}
    for part in filter(None, params.split(",")):
        component, _, count = part.partition("=")
        counts[component] = int(count)
    return SandboxTemplate(name=name, language=language or "en", params=counts)


def _key(spec: str) -> SandboxKey:
    """KEY:SECRET:NUMBER[,NUMBER...], e.g. ``waapi_b:secr_b:+15550000003``."""
    key, secret, numbers = spec.split(":", 2)
    return SandboxKey(key=key, secret=secret or None, numbers=numbers.split(","), name=key)


def _qr(spec: str) -> SandboxQrSession:
    """SESSION_ID:NUMBER, e.g. ``sess_two:+15550000002``."""
    session_id, number = spec.split(":", 1)
    return SandboxQrSession(session_id=session_id, phone_number=number)


# The fault options: flag -> (the field of SandboxConfig.faults it sets, its type, help).
_FAULTS: dict[str, tuple[str, type, str]] = {
    "--latency-ms": ("latency_ms", float, "Mean latency added to every API call."),
    "--jitter-ms": ("latency_jitter_ms", float, "Standard deviation of that latency."),
    "--rate-5xx": ("rate_5xx", float, "Share of calls answered 503."),
    "--rate-429": ("rate_429", float, "Share of calls answered 429 with Retry-After."),
    "--rate-reset": ("rate_reset", float, "Share of calls whose connection is reset."),
    "--rate-timeout": ("rate_timeout", float, "Share of calls that hang (--hang-s)."),
    "--rate-lost-response": (
        "rate_lost_response",
        float,
        "Share of calls processed, then reset instead of answered.",
    ),
    "--hang-s": ("hang_s", float, "How long a hanging call hangs."),
}


def _fault_options(command: Callable[..., None]) -> Callable[..., None]:
    """Add every fault option; each arrives as ``fault_<field>``."""
    for flag, (field, kind, text) in reversed(_FAULTS.items()):
        command = click.option(flag, f"fault_{field}", type=kind, help=text)(command)
    return command


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8099, show_default=True, type=int)
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, path_type=Path),
    help="JSON file in the shape of SandboxConfig (replaces the demo setup).",
)
@_fault_options
@click.option("--per-minute", type=int, help="Per-key quota per minute (every key).")
@click.option("--per-hour", type=int, help="Per-key quota per hour (every key).")
@click.option("--webhook-url", help="Post signed status and inbound webhooks here (every key).")
@click.option("--no-window", is_flag=True, help="Do not enforce the 24-hour window.")
@click.option("--seed", type=int, help="Seed for faults, for repeatable runs.")
@click.option(
    "--messaging-tier",
    type=int,
    help="Meta's messaging limit: unique recipients in 24 h; over it, sends are never delivered.",
)
@click.option("--number", "numbers", multiple=True, help="Bind another number to the first key.")
@click.option("--key", "keys", multiple=True, help="Add a key: KEY:SECRET:NUMBER[,NUMBER].")
@click.option(
    "--template", "templates", multiple=True, help="Add an approved template: NAME[:LANG[:body=N]]."
)
@click.option(
    "--qr-session",
    "qr_sessions",
    multiple=True,
    help="Add a connected QR session: SESSION_ID:NUMBER.",
)
def sandbox(
    host: str,
    port: int,
    config_file: Path | None,
    per_minute: int | None,
    per_hour: int | None,
    webhook_url: str | None,
    no_window: bool,
    seed: int | None,
    messaging_tier: int | None,
    numbers: tuple[str, ...],
    keys: tuple[str, ...],
    templates: tuple[str, ...],
    qr_sessions: tuple[str, ...],
    **faults: float | None,
) -> None:
    """Run the sandbox gateway (demo key waapi_sandbox / secr_sandbox)."""
    try:
        config = SandboxConfig.from_file(config_file) if config_file else SandboxConfig.demo()
        for name, value in faults.items():
            if value is not None:
                setattr(config.faults, name.removeprefix("fault_"), value)
        config.keys[0].numbers = config.keys[0].numbers + list(numbers)
        config.keys.extend(_key(spec) for spec in keys)
        config.templates.extend(_template(spec) for spec in templates)
        config.qr_sessions.extend(_qr(spec) for spec in qr_sessions)
        for key in config.keys:
            if per_minute is not None:
                key.per_minute = per_minute
            if per_hour is not None:
                key.per_hour = per_hour
            if webhook_url is not None:
                key.webhook_url = webhook_url
        if no_window:
            config.enforce_window = False
        if seed is not None:
            config.seed = seed
        if messaging_tier is not None:
            config.messaging_tier = messaging_tier
        config = SandboxConfig.model_validate(config.model_dump())
    except ValidationError as exc:
        fail("; ".join(str(p) for p in problems_of(exc)))
    except ValueError as exc:
        fail(f"bad option value: {exc}")
    click.echo(
        f"sandbox gateway on http://{host}:{port}{API_PREFIX} "
        f"(control: http://{host}:{port}/_sandbox/sent)",
        err=True,
    )
    run(config, host, port)
