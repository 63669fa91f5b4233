"""The send loop's hold on the Celery thread that delivered a job, in-process on a real
Redis and the sandbox gateway: a held thread that found its queue empty rests (so that
Celery does not deliver one by one what the process's lanes would take), a thread that
may not be held does not, and a stopping loop ends a rest at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis

from dispatcher.engine import loop
from dispatcher.engine.loop import SendLoop
from dispatcher.engine.worker import Worker
from dispatcher.job.queues import queue_name
from dispatcher.producer.api import Dispatcher
from tests.support.processes import SandboxProcess
from tests.support.stack import make_settings
from tests.support.waiting import wait_until

SENDER = "+15550000001"
QUEUE = queue_name("cloud", SENDER, "transactional")


@pytest.fixture
def parts(redis_url: str, sandbox: SandboxProcess) -> Iterator[tuple[Dispatcher, Worker]]:
    settings = make_settings(redis_url, sandbox.base_url)
    with Dispatcher(settings, redis.Redis.from_url(redis_url)) as dispatcher:
        yield dispatcher, Worker.from_settings(settings, 8)


def test_a_held_thread_rests_after_its_drain_and_a_reserved_one_does_not(
    parts: tuple[Dispatcher, Worker],
) -> None:
    dispatcher, worker = parts
    sends = SendLoop(worker, threads=loop.RESERVED_THREADS + 1).start()  # one thread to hold
    try:
        held = dispatcher.send_template("+15551230001", SENDER, "hello_world", "en")
        started = time.monotonic()
        assert sends.handle(None, QUEUE, held) == "sent"
        assert time.monotonic() - started >= loop.MIN_HOLD_S

        # While a thread is held, the next is not: it is one of the reserved threads,
        # which go on as soon as their job is done.
        first = dispatcher.send_template("+15551230002", SENDER, "hello_world", "en")
        holding = threading.Thread(target=sends.handle, args=(None, QUEUE, first))
        holding.start()
        wait_until(lambda: dispatcher.job(first).state == "sent", timeout_s=10)
        second = dispatcher.send_template("+15551230003", SENDER, "hello_world", "en")
        started = time.monotonic()
        assert sends.handle(None, QUEUE, second) == "sent"
        assert time.monotonic() - started < loop.MIN_HOLD_S
        holding.join(10)
        assert not holding.is_alive()
    finally:
        sends.close()


def test_a_stopping_loop_ends_a_rest_at_once(
    parts: tuple[Dispatcher, Worker], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loop, "MIN_HOLD_S", 60.0)  # a rest far longer than the stop takes
    dispatcher, worker = parts
    sends = SendLoop(worker, threads=8).start()
    job = dispatcher.send_template("+15551230004", SENDER, "hello_world", "en")
    answers: list[str] = []
    resting = threading.Thread(target=lambda: answers.append(sends.handle(None, QUEUE, job)))
    resting.start()
    try:
        wait_until(lambda: dispatcher.job(job).state == "sent", timeout_s=10)
        time.sleep(0.2)  # its drain found the queue empty: it rests now
        assert resting.is_alive()
    finally:
        started = time.monotonic()
        sends.close()
        resting.join(30)
    assert answers == ["sent"]
    assert time.monotonic() - started < 30
