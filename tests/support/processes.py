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


def most_in_window(times: list[float], window_s: float) -> int:
    """The most of ``times`` (seconds, as the sandbox's ``received``) in any window of
    ``window_s`` seconds: a rate as the gateway counts it."""
    times = sorted(times)
    most, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= window_s:
            first += 1
        most = max(most, last - first + 1)
    return most


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


SENTINEL_CONF = Path(__file__).resolve().parents[2] / "deploy" / "sentinel.conf"


@dataclass
class SentinelRedis:
    """A master, two replicas and three Sentinels on loopback, as the compose profile
    runs them; each Sentinel started from the shipped ``deploy/sentinel.conf`` (only its
    port and the master's address changed), so a failover takes the time users get."""

    master: RedisProcess
    replicas: list[RedisProcess]
    sentinels: list[subprocess.Popen[bytes]]
    sentinel_ports: list[int]
    name: str = "waapi"

    @classmethod
    def start(cls, workdir: Path) -> SentinelRedis:
        master = RedisProcess.start(workdir / "master")
        replicas = [
            RedisProcess.start(
                workdir / f"replica-{n}", "--replicaof", "127.0.0.1", str(master.port)
            )
            for n in (1, 2)
        ]
        ports = [free_port() for _ in range(3)]
        sentinels = []
        for port in ports:
            conf = workdir / f"sentinel-{port}.conf"
            lines = []
            for line in SENTINEL_CONF.read_text().splitlines():
                if line.startswith("port "):
                    line = f"port {port}"
                elif line.startswith("sentinel monitor "):
                    line = f"sentinel monitor waapi 127.0.0.1 {master.port} 2"
                lines.append(line)
            conf.write_text("\n".join([*lines, "bind 127.0.0.1", f"dir {workdir}", ""]))
            sentinels.append(
                subprocess.Popen(
                    ["redis-server", str(conf), "--sentinel", "--loglevel", "warning"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        group = cls(master, replicas, sentinels, ports)
        # A replica's first sync starts after repl-diskless-sync-delay (5 s), and a
        # Sentinel reads the master's INFO every 10 s: that is when it sees the replicas.
        wait_until(lambda: group.replicas_in_sync() and group.replicas_seen() >= 2, timeout_s=40)
        wait_until(lambda: group.sentinels_seen() >= 3, timeout_s=30)
        return group

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"sentinel://{hosts}/0?master={self.name}"

    def _ask(self, *command: str) -> Any:
        import redis

        with redis.Redis(
            port=self.sentinel_ports[0], socket_timeout=2, decode_responses=True
        ) as sentinel:
            return sentinel.execute_command(*command)

    def replicas_in_sync(self) -> bool:
        import redis

        for server in self.replicas:
            with redis.Redis(port=server.port, socket_timeout=2) as replica:
                if replica.info("replication").get("master_link_status") != "up":
                    return False
        return True

    def replicas_seen(self) -> int:
        return int(self._master_info().get("num-slaves", 0))

    def sentinels_seen(self) -> int:
        return int(self._master_info().get("num-other-sentinels", -1)) + 1

    def _master_info(self) -> dict[str, str]:
        try:
            info = self._ask("SENTINEL", "MASTER", self.name)
        except Exception:
            return {}
        return {str(k): str(v) for k, v in info.items()}

    def master_port(self) -> int:
        _host, port = self._ask("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.name)
        return int(port)

    def failover(self) -> None:
        """``SENTINEL FAILOVER``: promote the replica and demote the master, which keeps
        running (as a replica)."""
        self._ask("SENTINEL", "FAILOVER", self.name)

    def kill_master(self) -> None:
        """SIGKILL the master: its clients see their connections reset, the Sentinels see
        it silent, and after ``down-after-milliseconds`` promote the replica."""
        self.master.proc.kill()
        self.master.proc.wait(10)

    def stop(self) -> None:
        for proc in self.sentinels:
            proc.terminate()
        for proc in self.sentinels:
            proc.wait(10)
        for server in (*self.replicas, self.master):
            if server.proc.poll() is None:
                server.stop()
