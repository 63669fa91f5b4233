"""``waapi-dispatch up`` (what ``make run`` runs): everything needed, in one terminal.

Starts a private ``redis-server`` (data and AOF under ``./var``) unless ``REDIS_URL`` is
set, and the sandbox gateway when no gateway credentials are configured; checks the
gateway with a ping; starts a worker for every configured number and beat; prints
where things are and what to try; stops everything on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
from pathlib import Path

import click
import requests

from config import Settings
from dispatcher.cli.common import fail, settings_or_exit
from dispatcher.cli.outcomes import OutcomeLines
from dispatcher.cli.supervise import StopRequested, Supervisor, port_open
from dispatcher.errors import GatewayError
from dispatcher.gateway import WaapiClient
from dispatcher.ledger.connection import connect
from dispatcher.sandbox import API_PREFIX, DEMO_KEY, DEMO_NUMBERS, DEMO_SECRET, DEMO_VERIFY_TOKEN


def _sandbox_env(port: int) -> dict[str, str]:
    return {
        "WAAPI_BASE_URL": f"http://127.0.0.1:{port}{API_PREFIX}",
        "WAAPI_API_KEY": DEMO_KEY,
        "WAAPI_API_SECRET": DEMO_SECRET,
        "WAAPI_FROM_NUMBERS": ",".join(DEMO_NUMBERS),
        "WAAPI_WEBHOOK_VERIFY_TOKEN": DEMO_VERIFY_TOKEN,
    }


def _redis_argv(port: int, data_dir: Path) -> list[str]:
    server = shutil.which("redis-server")
    if server is None:
        fail(
            "redis-server is not installed: run `make install` (or apt-get install "
            "redis-server), or set REDIS_URL to a Redis you run"
        )
    return [
        server,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data_dir),
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--maxmemory-policy",
        "noeviction",
        # Job records hold their envelope (a few hundred bytes): keep them compact.
        "--hash-max-listpack-value",
        "1024",
        "--save",
        "",
        "--daemonize",
        "no",
        "--loglevel",
        "warning",
    ]


def _ping_all(settings: Settings) -> None:
    for key in settings.keys:
        client = WaapiClient.for_key(settings, key)
        try:
            result = client.ping()
            click.echo(
                f"gateway: {settings.waapi_base_url} key {result.api_key_name!r} ok "
                f"(numbers {', '.join(key.numbers)})"
            )
        except GatewayError as exc:
            click.echo(f"gateway: ping with key {key.name!r} failed: {exc.message}", err=True)
        finally:
            client.close()


@click.command()
@click.option("--sandbox-port", default=8099, show_default=True, type=int)
@click.option("--redis-port", default=6379, show_default=True, type=int)
@click.option("--http-port", default=8080, show_default=True, type=int)
@click.option("--var-dir", default="var", show_default=True, type=click.Path(path_type=Path))
def up(sandbox_port: int, redis_port: int, http_port: int, var_dir: Path) -> None:
    """Run the dispatcher locally: Redis, the sandbox when no credentials are set, and more."""
    settings = settings_or_exit()
    supervisor = Supervisor()
    supervisor.trap_signals()
    env = dict(os.environ)
    try:
        if not settings.has_credentials:
            click.secho(
                "\n  NO GATEWAY CREDENTIALS SET: using the SANDBOX gateway. Nothing reaches\n"
                "  WhatsApp. Set WAAPI_API_KEY, WAAPI_API_SECRET and WAAPI_FROM_NUMBERS\n"
                "  (or WAAPI_KEYS) to send for real.\n",
                fg="yellow",
                bold=True,
                err=True,
            )
            hook = f"http://127.0.0.1:{http_port}/v1/webhooks/waapi"
            supervisor.start(
                "sandbox",
                [
                    sys.executable,
                    "-m",
                    "dispatcher",
                    "sandbox",
                    "--port",
                    str(sandbox_port),
                    "--webhook-url",
                    hook,
                ],
            )
            supervisor.wait_port("sandbox", "127.0.0.1", sandbox_port)
            env.update(_sandbox_env(sandbox_port))
        if "REDIS_URL" not in os.environ:
            if port_open("127.0.0.1", redis_port):
                fail(
                    f"port {redis_port} is taken: stop what runs there, pass --redis-port, "
                    "or set REDIS_URL to use that Redis"
                )
            data_dir = var_dir / "redis"
            data_dir.mkdir(parents=True, exist_ok=True)
            supervisor.start("redis", _redis_argv(redis_port, data_dir.resolve()))
            supervisor.wait_port("redis", "127.0.0.1", redis_port)
            env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
        effective = settings_or_exit(
            **{}
            if settings.has_credentials
            else {k.lower(): v for k, v in _sandbox_env(sandbox_port).items()}
        )
        _ping_all(effective)
        supervisor.start(
            "worker", [sys.executable, "-m", "dispatcher", "worker", "-l", "warning"], env
        )
        token = None
        if not effective.tokens:
            token = _dev_token(var_dir)
            env["DISPATCH_TOKENS"] = json.dumps(
                [{"name": "dev", "token": token, "scopes": ["admin"]}]
            )
        supervisor.start(
            "web", [sys.executable, "-m", "dispatcher", "serve", "--port", str(http_port)], env
        )
        supervisor.wait_port("web", "127.0.0.1", http_port)
        schedule = var_dir / "celerybeat-schedule"
        supervisor.start(
            "beat",
            [
                sys.executable,
                "-m",
                "dispatcher",
                "beat",
                "-l",
                "warning",
                "--schedule-file",
                str(schedule),
            ],
            env,
        )
        supervisor.wait_alive(("worker", "beat"), seconds=2.0)
        if not settings.has_credentials:
            _open_windows(sandbox_port)
        click.echo(f"redis:   {env.get('REDIS_URL')}")
        click.echo(f"http:    http://127.0.0.1:{http_port} (docs: /docs)")
        click.echo(f"console: http://127.0.0.1:{http_port}/console (sign in with the token)")
        if token is not None:
            click.echo(
                f"token:   {token}  (a development token with every scope, kept in "
                f"{var_dir / DEV_TOKEN_FILE} across runs: set DISPATCH_TOKENS for real ones)"
            )
        click.echo(
            f"workers: every configured number ({', '.join(effective.from_numbers)}), "
            "beat ticking every second"
        )
        if not settings.has_credentials:
            base = f"http://127.0.0.1:{sandbox_port}"
            exports = " ".join(f"{k}={v}" for k, v in _sandbox_env(sandbox_port).items())
            sender, (first, second) = DEMO_NUMBERS[0], QUICKSTART_RECIPIENTS
            click.echo(
                f"sandbox: {base}{API_PREFIX} (sent messages: {base}/_sandbox/sent)\n\n"
                "Try it from another terminal:\n"
                f"  export {exports} REDIS_URL={env['REDIS_URL']}\n"
                f"  waapi-dispatch send template --from {sender} --to {first} "
                "--name hello_world --language en\n"
                f"  waapi-dispatch send text --from {sender} --to {first} "
                "--body 'Your code is 123456'   # their window is open: they wrote first\n"
                "  waapi-dispatch job <the id it printed>\n"
                f"  curl -s -X POST http://127.0.0.1:{http_port}/v1/whatsapp-api/messages/"
                f"template -H 'Authorization: Bearer {token or '<your token>'}' "
                "-H 'Content-Type: application/json' \\\n"
                f'    -d \'{{"to": "{second}", "fromPhoneNo": "{sender}", '
                '"name": "hello_world", "language": "en"}\'\n'
                f"  curl -s {base}/_sandbox/sent\n"
            )
        click.echo("ready. Ctrl-C stops everything; a line per job outcome follows.", err=True)
        outcomes = OutcomeLines(
            connect(settings_or_exit(redis_url=env["REDIS_URL"]), max_connections=2),
            lambda line: click.echo(line),
        )
    except StopRequested:
        supervisor.stop()
        raise SystemExit(0) from None
    except (RuntimeError, OSError) as exc:
        supervisor.stop()
        fail(str(exc))
    except SystemExit:
        supervisor.stop()
        raise
    raise SystemExit(supervisor.run_until_stopped(every=outcomes))


DEV_TOKEN_FILE = "dev-token"  # noqa: S105 (a file name, not a secret)
# The recipients the printed examples send to: the sandbox hears from each first, so the
# 24-hour window is open and free text goes through on the first try.
QUICKSTART_RECIPIENTS = ("+15551230001", "+15551230002")


def _dev_token(var_dir: Path) -> str:
    """The development token, made once and kept under ``var_dir`` (owner-only), so
    that scripts and curl lines written against one run work with the next."""
    path = var_dir / DEV_TOKEN_FILE
    if path.exists():
        return path.read_text().strip()
    token = "dev_" + secrets.token_urlsafe(24)
    var_dir.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(token + "\n")
    return token


def _open_windows(sandbox_port: int) -> None:
    """Each quickstart recipient writes to each demo number (the sandbox's inbound
    message), which opens the customer-service window a free-text send needs."""
    base = f"http://127.0.0.1:{sandbox_port}/_sandbox/inbound"
    with requests.Session() as session:
        for customer in QUICKSTART_RECIPIENTS:
            for ours in DEMO_NUMBERS:
                body = {"from": customer, "to": ours, "text": "hi"}
                session.post(base, json=body, timeout=5).raise_for_status()
