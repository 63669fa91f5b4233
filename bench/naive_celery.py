"""Naive Celery, for comparison: one task per message, ``requests`` in the task body.

Used by the benchmarks with ``celery -A bench.naive_celery worker``; the broker is
``NAIVE_BROKER`` and the gateway ``NAIVE_GATEWAY`` (the sandbox), with the demo key. The
per-worker ``rate_limit`` is what Celery offers: ``NAIVE_RATE_LIMIT`` (e.g. ``1200/m``).
A careful user sizes ``requests``' connection pool to the thread pool (its default of 10
connections would make 100 threads queue for a socket): ``NAIVE_POOL`` connections.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from celery import Celery

app = Celery("naive", broker=os.environ.get("NAIVE_BROKER", "redis://127.0.0.1:6379/0"))
app.conf.update(
    task_ignore_result=True,
    task_serializer="json",
    accept_content=["json"],
    worker_hijack_root_logger=False,
)
_session = requests.Session()
_pool = int(os.environ.get("NAIVE_POOL", "10"))
_session.mount("http://", requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=_pool))
_session.mount("https://", requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=_pool))
_GATEWAY = os.environ.get("NAIVE_GATEWAY", "http://127.0.0.1:8099/api/v1/external")
_HEADERS = {"X-API-Key": "waapi_sandbox", "X-API-Secret": "secr_sandbox"}


@app.task(name="naive.send", rate_limit=os.environ.get("NAIVE_RATE_LIMIT") or None)
def send(body: dict[str, Any]) -> int:
    response = _session.post(
        f"{_GATEWAY}/whatsapp-api/messages/template", json=body, headers=_HEADERS, timeout=(3, 20)
    )
    return response.status_code


def start_worker(
    env: dict[str, str], threads: int, name: str | None = None
) -> subprocess.Popen[bytes]:
    """``celery -A bench.naive_celery worker`` with a pool of ``threads`` threads."""
    argv = [sys.executable, "-m", "celery", "-A", "bench.naive_celery", "worker",
            "-P", "threads", "-c", str(threads), "-l", "warning"]  # fmt: skip
    if name is not None:
        argv += ["-n", name]
    return subprocess.Popen(
        argv,
        env={"NAIVE_POOL": str(threads), **env},
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@contextmanager
def running_workers(
    env: dict[str, str], count: int, threads: int
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``count`` workers (:func:`start_worker`, named ``naive<n>``), stopped on the way out."""
    procs = [start_worker(env, threads, name=f"naive{n}@%h") for n in range(count)]
    try:
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)
