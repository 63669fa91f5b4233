"""Start child processes, wait for them to be ready, stop them all together."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType


def port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


class StopRequested(Exception):
    """SIGINT or SIGTERM arrived while things were still starting."""


RESTARTS_PER_MINUTE = 5  # more than this and a child is failing, not flaking: stop


@dataclass
class Supervisor:
    """Children started in order, stopped in reverse. One that exits while running is
    started again, with a line saying so (an experiment goes on); one that keeps
    exiting (more than RESTARTS_PER_MINUTE times a minute) stops everything."""

    children: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    stopping: bool = False
    _how: dict[str, tuple[list[str], dict[str, str]]] = field(default_factory=dict)
    _restarts: dict[str, list[float]] = field(default_factory=dict)

    def start(
        self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        self._how[name] = (list(argv), dict(env or os.environ))
        proc = self._spawn(name)
        self.children.append((name, proc))
        return proc

    def _spawn(self, name: str) -> subprocess.Popen[bytes]:
        argv, env = self._how[name]
        return subprocess.Popen(argv, env=env)  # noqa: S603

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

    def run_until_stopped(self, every: Callable[[], None] | None = None) -> int:
        """Block until SIGINT/SIGTERM, restarting children that exit; return the exit
        code to use (1 when a child kept exiting). ``every`` runs on each turn."""
        code = 0
        while not self.stopping:
            for index, (name, proc) in enumerate(self.children):
                if proc.poll() is None:
                    continue
                now = time.monotonic()
                recent = [t for t in self._restarts.get(name, []) if now - t < 60] + [now]
                self._restarts[name] = recent
                if len(recent) > RESTARTS_PER_MINUTE:
                    print(
                        f"{name} exited with {proc.returncode}, {len(recent)} times in a "
                        "minute; stopping everything",
                        flush=True,
                    )
                    self.stopping, code = True, 1
                    break
                print(f"{name} exited with {proc.returncode}; restarting it", flush=True)
                self.children[index] = (name, self._spawn(name))
            if every is not None:
                every()
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
