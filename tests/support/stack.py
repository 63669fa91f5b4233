"""The whole dispatcher from real parts: Redis, the sandbox, workers, beat, the HTTP
service."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from dispatcher.ledger.states import TERMINAL_STATES
from tests.support.cli import clean_env
from tests.support.data import REPO, SANDBOX_KEYS, TOKENS
from tests.support.processes import RedisProcess, SandboxProcess, free_port
from tests.support.waiting import wait_until


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
                "PYTHONPATH": str(REPO),
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

    def start_worker(self, *args: str, threads: int | None = None) -> subprocess.Popen[bytes]:
        """A worker of ``threads`` Celery threads (default: WORKER_CONCURRENCY's, as users
        get)."""
        given = ("-c", str(threads)) if threads is not None else ()
        return self.start("worker", *given, "-l", "warning", *args, log="worker")

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
