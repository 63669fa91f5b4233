"""The command line as a person runs it: ``waapi-dispatch`` in a subprocess, a clean environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.data import REPO


def clean_env(**values: str) -> dict[str, str]:
    """This environment without the machine's gateway or Redis settings, plus ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WAAPI_", "REDIS_", "RETRY_"))}
    env["PYTHONPATH"] = str(REPO)
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
