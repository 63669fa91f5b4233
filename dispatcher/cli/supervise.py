"""Start child processes, wait for them to be ready, stop them all together."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType


def port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


class StopRequested(Exception):
    """SIGINT or SIGTERM arrived while things were still starting."""


@dataclass
class Supervisor:
    """Children started in order, stopped in reverse; one dies, all stop."""

    children: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    stopping: bool = False

    def start(
        self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(list(argv), env=dict(env or os.environ))  # noqa: S603
        self.children.append((name, proc))
        return proc

    def wait_port(self, name: str, host: str, port: int, timeout_s: float = 15.0) -> None:
        deadline = time.monotonic() + timeout_s
        proc = dict(self.children)[name]
        while time.monotonic() < deadline:
            if self.stopping:
                raise StopRequested
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode} while starting")
            if port_open(host, port):
                return
            time.sleep(0.05)
        raise RuntimeError(f"{name} did not open {host}:{port} within {timeout_s:.0f} s")

    def wait_alive(self, names: Sequence[str], seconds: float) -> None:
        """Fail when one of ``names`` exits within ``seconds`` (a bad start)."""
        deadline = time.monotonic() + seconds
        procs = dict(self.children)
        while time.monotonic() < deadline:
            if self.stopping:
                raise StopRequested
            for name in names:
                if procs[name].poll() is not None:
                    raise RuntimeError(f"{name} exited with {procs[name].returncode} at start")
            time.sleep(0.1)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def trap_signals(self) -> None:
        """From now on SIGINT/SIGTERM ask for a clean stop instead of killing us alone
        (which would leave the children running)."""
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    def run_until_stopped(self) -> int:
        """Block until SIGINT/SIGTERM or a child exits; return the exit code to use."""
        code = 0
        while not self.stopping:
            for name, proc in self.children:
                if proc.poll() is not None:
                    print(f"{name} exited with {proc.returncode}; stopping everything")
                    self.stopping, code = True, 1
                    break
            time.sleep(0.2)
        self.stop()
        return code

    def stop(self, timeout_s: float = 10.0) -> None:
        for _, proc in reversed(self.children):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for _, proc in reversed(self.children):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
