"""Test helpers: a real sandbox gateway process, free ports, a webhook receiver."""

from __future__ import annotations

import json
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

DATA = Path(__file__).parent / "data"
KEYS = {
    "sandbox": ("waapi_sandbox", "secr_sandbox"),
    "readonly": ("waapi_readonly", "secr_readonly"),
    "cloudonly": ("waapi_cloudonly", "secr_cloudonly"),
    "nocontacts": ("waapi_nocontacts", "secr_nocontacts"),
}


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
    def start(cls, *args: str) -> SandboxProcess:
        port = free_port()
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


@contextmanager
def webhook_receiver(statuses: Sequence[int] = ()) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(statuses)
    receiver.thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
