from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import DATA, SandboxProcess


@pytest.fixture(scope="session")
def sandbox_process() -> Iterator[SandboxProcess]:
    """One sandbox gateway for the session, configured with several kinds of key."""
    process = SandboxProcess.start("--config", str(DATA / "sandbox.json"))
    yield process
    process.stop()


@pytest.fixture
def sandbox(sandbox_process: SandboxProcess) -> SandboxProcess:
    """The session's sandbox, emptied of messages, faults and windows for this test."""
    sandbox_process.reset()
    return sandbox_process
