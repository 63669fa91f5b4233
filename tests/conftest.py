from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from dispatcher.producer.api import Dispatcher
from tests.support.cli import clean_env
from tests.support.data import DATA
from tests.support.processes import RedisProcess, SandboxProcess
from tests.support.stack import make_settings
from tests.support.waiting import FakeClock


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


@pytest.fixture(scope="session")
def redis_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """One redis-server for the session; tests that use it start from an empty db."""
    process = RedisProcess.start(Path(tmp_path_factory.mktemp("redis")))
    yield process
    process.stop()


@pytest.fixture
def redis_url(redis_process: RedisProcess) -> Iterator[str]:
    client = redis.Redis(port=redis_process.port)
    client.flushall()
    yield redis_process.url
    client.close()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def clock(request: pytest.FixtureRequest) -> Callable[[], float]:
    """The wall clock; a settable FakeClock in modules marked ``fake_clock``."""
    if request.node.get_closest_marker("fake_clock"):
        return FakeClock()
    return time.time


@pytest.fixture
def dispatcher(redis_url: str, clock: Callable[[], float]) -> Iterator[Dispatcher]:
    """A Dispatcher on the test's empty Redis with the shipped settings (no workers)."""
    with Dispatcher(make_settings(redis_url), redis.Redis.from_url(redis_url), clock) as made:
        yield made


@pytest.fixture
def cli_env(redis_url: str) -> dict[str, str]:
    """The environment of a ``waapi-dispatch`` run on the test's Redis with the sandbox's
    demo key on both numbers and both channels (the simple three-variable setup)."""
    return clean_env(
        REDIS_URL=redis_url,
        WAAPI_API_KEY="waapi_sandbox",
        WAAPI_API_SECRET="secr_sandbox",
        WAAPI_FROM_NUMBERS="+15550000001,+15550000002",
        WAAPI_CHANNELS="cloud,qr",
    )
