"""Commands that talk to the gateway directly."""

from __future__ import annotations

import click
from pydantic import SecretStr

from dispatcher.cli.common import echo_listing, fail, settings_or_exit
from dispatcher.errors import GatewayError
from dispatcher.gateway import WaapiClient
from dispatcher.ops.sessions import as_gateway_item, qr_sessions


@click.command()
@click.option("--base-url", help="Gateway base URL (default: WAAPI_BASE_URL).")
@click.option("--api-key", help="A key to ping instead of the configured ones.")
@click.option("--api-secret", help="Its secret (prefer the environment).")
def ping(base_url: str | None, api_key: str | None, api_secret: str | None) -> None:
    """Check gateway credentials: prints the vendor id and the key's name for each key."""
    settings = settings_or_exit()
    base = base_url or settings.waapi_base_url
    if api_key:
        secret = SecretStr(api_secret) if api_secret else None
        clients = [(api_key, WaapiClient(base, api_key, secret))]
    elif settings.keys:
        clients = [
            (key.name, WaapiClient(base, key.key, key.secret, read_timeout_s=10))
            for key in settings.keys
        ]
    else:
        fail(
            "no gateway credentials: set WAAPI_API_KEY, WAAPI_API_SECRET and "
            "WAAPI_FROM_NUMBERS (or WAAPI_KEYS), or pass --api-key"
        )
    failed = False
    for label, client in clients:
        try:
            result = client.ping()
        except GatewayError as exc:
            status = f"HTTP {exc.status}: " if exc.status else ""
            click.echo(f"{label}: {status}{exc.message}", err=True)
            failed = True
        else:
            click.echo(
                f"{label}: ok, vendor {result.vendor_id}, key {result.api_key_name!r} at {base}"
            )
        finally:
            client.close()
    if failed:
        raise SystemExit(1)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the gateway's shape).")
def sessions(as_json: bool) -> None:
    """List the QR sessions the configured keys (with the qr channel) can send through."""
    settings = settings_or_exit()
    if not any("qr" in key.channels for key in settings.keys):
        fail("no key with the qr channel: set WAAPI_CHANNELS=cloud,qr (or a key's channels)")
    try:
        found = qr_sessions(settings)
    except GatewayError as exc:
        fail(f"the gateway answered: {exc.message}")
    echo_listing(
        found,
        as_json,
        as_gateway_item,
        lambda s: (
            f"{s.session_id}  {s.phone_number or '-'}  {s.status or '-'}  {s.session_name or ''}"
        ),
        empty="no connected sessions",
    )
