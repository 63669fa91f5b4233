"""Test helpers: a real sandbox gateway process, free ports, a webhook receiver."""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
from pydantic import SecretStr

from dispatcher.gateway import WaapiClient
from dispatcher.ledger.states import TERMINAL_STATES

DATA = Path(__file__).parent / "data"
# The sandbox's demo key as the dispatcher is configured with it in tests.
SANDBOX_KEYS = [
    {
        "name": "sandbox",
        "key": "waapi_sandbox",
        "secret": "secr_sandbox",
        "numbers": ["+15550000001", "+15550000002"],
        "channels": ["cloud", "qr"],
        "webhook_verify_token": "verify_sandbox",
    }
]
# Producer tokens of the HTTP service in tests.
TOKENS = [
    {"name": "crm", "token": "tok_crm_0123456789abcdef", "scopes": ["send", "read"]},
    {"name": "reader", "token": "tok_reader_0123456789ab", "scopes": ["read"]},
    {
        "name": "number2",
        "token": "tok_number2_0123456789",
        "scopes": ["send", "read"],
        "numbers": ["+15550000002"],
    },
    {"name": "ops", "token": "tok_admin_0123456789abcd", "scopes": ["admin"]},
    {"name": "sender", "token": "tok_sender_0123456789ab", "scopes": ["send"]},
    {"name": "marketing", "token": "tok_marketing_01234567", "scopes": ["campaigns"]},
    {"name": "prometheus", "token": "tok_prometheus_0123456", "scopes": ["metrics"]},
]
BEARER = {t["name"]: {"Authorization": f"Bearer {t['token']}"} for t in TOKENS}
KEYS = {
    "sandbox": ("waapi_sandbox", "secr_sandbox"),
    "readonly": ("waapi_readonly", "secr_readonly"),
    "cloudonly": ("waapi_cloudonly", "secr_cloudonly"),
    "nocontacts": ("waapi_nocontacts", "secr_nocontacts"),
}


def campaign_spec(**fields: Any) -> Any:
    """A campaign of ``order_shipped`` with two variables per recipient (``name``,
    ``awb``), on both demo numbers, due now unless ``schedule`` says otherwise."""
    from datetime import UTC, datetime

    from dispatcher.campaigns import CampaignSpec

    parameters = [{"type": "text", "text": "{{name}}"}, {"type": "text", "text": "{{awb}}"}]
    return CampaignSpec.model_validate(
        {
            "name": "promo",
            "fromPhoneNos": ["+15550000001", "+15550000002"],
            "message": {
                "type": "template",
                "body": {
                    "name": "order_shipped",
                    "language": "en",
                    "components": [{"type": "body", "parameters": parameters}],
                },
            },
            "schedule": {"at": datetime.now(UTC).isoformat()},
            **fields,
        }
    )


def clean_env(**values: str) -> dict[str, str]:
    """This environment without the machine's gateway or Redis settings, plus ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WAAPI_", "REDIS_", "RETRY_"))}
    env["PYTHONPATH"] = str(Path(__file__).parent.parent)
    env.update(values)
    return env


def run_cli(
    *args: str,
    env: dict[str, str],
    cwd: Path | None = None,
    stdin: str | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """``waapi-dispatch ARGS`` in a subprocess, as a person types it."""
    return subprocess.run(
        [sys.executable, "-m", "dispatcher", *args],
        env=env,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Any, timeout_s: float = 10.0, interval_s: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"condition not met within {timeout_s} s")


@dataclass
class SandboxProcess:
    """``waapi-dispatch sandbox`` in a subprocess, steered over its /_sandbox endpoints."""

    port: int
    proc: subprocess.Popen[bytes]
    http: requests.Session = field(default_factory=requests.Session)

    @classmethod
    def start(cls, *args: str, port: int | None = None) -> SandboxProcess:
        port = port or free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "dispatcher", "sandbox", "--port", str(port), *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        sandbox = cls(port, proc)

        def up() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"sandbox exited: {proc.stderr.read().decode()}")  # type: ignore[union-attr]
            try:
                return sandbox.http.get(sandbox.root + "/_sandbox/health", timeout=1).ok
            except requests.ConnectionError:
                return False

        wait_until(up)
        return sandbox

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        self.http.close()

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root}/api/v1/external"

    def client(self, key: str = "sandbox", **kwargs: Any) -> WaapiClient:
        api_key, secret = KEYS[key]
        return WaapiClient(self.base_url, api_key, SecretStr(secret), **kwargs)

    def control(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, self.root + path, json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        self.control("POST", "/_sandbox/reset")

    def faults(self, **changes: Any) -> dict[str, Any]:
        return dict(self.control("POST", "/_sandbox/faults", changes))

    def sent(self) -> list[dict[str, Any]]:
        return list(self.control("GET", "/_sandbox/sent")["items"])

    def stats(self) -> dict[str, Any]:
        return dict(self.control("GET", "/_sandbox/stats"))

    def inbound(self, customer: str, ours: str, **extra: Any) -> str:
        body = {"from": customer, "to": ours, "text": "hello", **extra}
        return str(self.control("POST", "/_sandbox/inbound", body)["id"])

    def webhooks(self, **settings: Any) -> None:
        self.control("POST", "/_sandbox/webhooks", settings)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookReceiver:
    """A real HTTP server on loopback that records every POST; answers ``status``."""

    def __init__(self, statuses: Sequence[int] = ()) -> None:
        self.received: list[Received] = []
        self._statuses = list(statuses)
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver._lock:
                    status = receiver._statuses.pop(0) if receiver._statuses else 200
                    if status < 300:
                        receiver.received.append(Received(dict(self.headers.items()), body))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hook"

    def bodies(self) -> list[Any]:
        with self._lock:
            return [r.json() for r in self.received]

    def statuses(self) -> list[tuple[str, str]]:
        """(wamid, status) of every status webhook received, in arrival order."""
        out = []
        for body in self.bodies():
            for entry in body["entry"]:
                for change in entry["changes"]:
                    for status in change["value"].get("statuses", []):
                        out.append((status["id"], status["status"]))
        return out


def sentry_dsn(receiver: WebhookReceiver) -> str:
    """A DSN that makes sentry-sdk post its envelopes to ``receiver`` over loopback."""
    return f"http://public0123456789abcdef@127.0.0.1:{receiver.server.server_port}/1"


def sentry_envelopes(receiver: WebhookReceiver) -> list[str]:
    """Every envelope sentry-sdk posted, as text (decompressed)."""
    texts = []
    with receiver._lock:
        received = list(receiver.received)
    for item in received:
        body = item.body
        if item.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        texts.append(body.decode())
    return texts


def sentry_events(receiver: WebhookReceiver) -> list[dict[str, Any]]:
    """The events in those envelopes (an envelope is JSON lines: header, item, payload)."""
    events = []
    for text in sentry_envelopes(receiver):
        lines = text.splitlines()
        for header, payload in zip(lines[1::2], lines[2::2], strict=False):
            if json.loads(header).get("type") == "event":
                events.append(json.loads(payload))
    return events


@contextmanager
def webhook_receiver(statuses: Sequence[int] = ()) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(statuses)
    receiver.thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


@dataclass
class RedisProcess:
    """A private ``redis-server`` on a free loopback port, no persistence by default."""

    port: int
    proc: subprocess.Popen[bytes]
    workdir: Path
    extra: tuple[str, ...] = ()

    @classmethod
    def start(cls, workdir: Path, *extra: str, port: int | None = None) -> RedisProcess:
        port = port or free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        server = cls(port, cls._spawn(port, workdir, extra), workdir, extra)
        wait_until(lambda: server.ping())
        return server

    @staticmethod
    def _spawn(port: int, workdir: Path, extra: Sequence[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
                "--loglevel",
                "warning",
                *extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_timeout=1).ping())
        except redis.ConnectionError:
            return False

    def restart(self, down_s: float, *, kill: bool = False) -> None:
        """Stop the server (SIGTERM: a clean shutdown that flushes the AOF; or SIGKILL),
        stay down ``down_s`` seconds, and start it again on the same port and files."""
        if kill:
            self.proc.kill()
        else:
            self.proc.terminate()
        self.proc.wait(30)
        time.sleep(down_s)
        self.proc = self._spawn(self.port, self.workdir, self.extra)
        wait_until(lambda: self.ping(), timeout_s=30)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class FakeClock:
    """A settable clock (seconds) for the ledger's time-dependent rules."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_settings(
    redis_url: str, base_url: str = "http://127.0.0.1:1/api/v1/external", **overrides: Any
) -> Any:
    """Settings for tests: the sandbox demo key on two numbers (+ a QR-capable third),
    every other setting as shipped unless the test says otherwise."""
    from config import Settings

    values: dict[str, Any] = {
        "redis_url": redis_url,
        "waapi_base_url": base_url,
        "waapi_keys": json.dumps(SANDBOX_KEYS),
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@contextmanager
def own_stack(
    workdir: Path, *sandbox_args: str, redis_args: Sequence[str] = (), **settings: Any
) -> Iterator[Stack]:
    """A Stack on its own Redis and sandbox, all of it stopped on the way out."""
    redis_server = RedisProcess.start(workdir / "redis", *redis_args)
    sandbox = SandboxProcess.start(*sandbox_args)
    stack = Stack(redis_server, sandbox, workdir, **settings)
    try:
        yield stack
    finally:
        stack.stop()
        sandbox.stop()
        redis_server.stop()


class Stack:
    """Real parts wired together: Redis, the sandbox, worker and beat processes, with the
    settings a user gets (only the gateway, Redis, keys and tokens are set here; a test
    that changes a setting says why)."""

    def __init__(
        self, redis_server: RedisProcess, sandbox: SandboxProcess, workdir: Path, **settings: Any
    ) -> None:
        self.redis = redis_server
        self.sandbox = sandbox
        self.workdir = workdir
        self.env = clean_env()
        self.env.update(
            {
                "PYTHONPATH": str(Path(__file__).parent.parent),
                "REDIS_URL": redis_server.url,
                "WAAPI_BASE_URL": sandbox.base_url,
                "WAAPI_KEYS": json.dumps(SANDBOX_KEYS),
                "DISPATCH_TOKENS": json.dumps(TOKENS),
            }
        )
        self.env.update({k.upper(): str(v) for k, v in settings.items()})
        self.procs: list[subprocess.Popen[bytes]] = []

    def settings(self) -> Any:
        from config import Settings

        saved = dict(os.environ)
        try:
            os.environ.clear()
            os.environ.update(self.env)
            return Settings(_env_file=None)  # type: ignore[call-arg]
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def dispatcher(self) -> Any:
        from dispatcher.producer.api import Dispatcher

        return Dispatcher(self.settings())

    def start(self, *args: str, log: str = "proc") -> subprocess.Popen[bytes]:
        with open(self.workdir / f"{log}.log", "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "dispatcher", *args],
                env=self.env,
                cwd=self.workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.procs.append(proc)
        return proc

    def start_worker(self, *args: str, threads: int = 16) -> subprocess.Popen[bytes]:
        return self.start("worker", "-c", str(threads), "-l", "warning", *args, log="worker")

    def start_serve(self) -> str:
        """The HTTP service on a free port; returns its base URL once it answers."""
        port = free_port()
        self.start("serve", "--port", str(port), log="serve")
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return requests.get(url + "/healthz", timeout=1).ok
            except requests.ConnectionError:
                return False

        wait_until(up, timeout_s=20)
        return url

    def start_beat(self, name: str = "beat") -> subprocess.Popen[bytes]:
        return self.start(
            "beat",
            "-l",
            "warning",
            "--schedule-file",
            str(self.workdir / f"{name}-schedule"),
            log=name,
        )

    def stop(self) -> None:
        """Stop the processes this stack started (Redis and the sandbox stay up)."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()

    def log(self, name: str = "worker") -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_states(
        self,
        dispatcher: Any,
        job_ids: Sequence[str],
        timeout_s: float = 60.0,
        settled: frozenset[str] = TERMINAL_STATES,
    ) -> dict[str, str]:
        """Wait until every job is in a settled state; return id -> state."""
        states: dict[str, str] = {}

        def done() -> bool:
            pipe = dispatcher.ledger.client.pipeline(transaction=False)
            for job_id in job_ids:
                pipe.hget(f"waapi:job:{job_id}", "state")
            for job_id, state in zip(job_ids, pipe.execute(), strict=True):
                states[job_id] = state.decode() if state else "missing"
            return all(s in settled for s in states.values())

        try:
            wait_until(done, timeout_s=timeout_s, interval_s=0.1)
        except AssertionError:
            pending = {s for s in states.values() if s not in settled}
            raise AssertionError(f"jobs not settled: {pending}\n{self.log()[-3000:]}") from None
        return states
