"""Real processes on loopback: a private redis-server and the sandbox gateway."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from pydantic import SecretStr

from dispatcher.gateway import WaapiClient
from tests.support.data import KEYS
from tests.support.waiting import wait_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
