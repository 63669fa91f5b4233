"""The send loop: one event loop per worker process, where busy queues are drained with
hundreds of sends in flight and no thread each.

A thread per send costs more than the send: with 32 threads a process spent more of its
time switching and contending for the GIL than calling the gateway. Here a worker
process runs one asyncio loop on a thread of its own. A Celery delivery to a
transactional queue is handled on Celery's thread as before, then wakes the loop
(:meth:`SendLoop.wake`); the loop drains that queue, and the other transactional queues
the process serves, in *lanes*: each is :meth:`Worker.drain_steps` driven by
:func:`~dispatcher.engine.steps.run_async`, so claims, admissions, leases, outcomes and
every recovery rule are the worker's own, unchanged. A lane that takes a message starts
another while fewer than ``WORKER_IN_FLIGHT`` run, so the lanes follow the work: one for
a trickle, hundreds for a backlog. Gateway calls go through one pooled ``aiohttp``
session; Redis calls are short round trips on loopback, made on the loop's thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import aiohttp

from dispatcher.engine.steps import Pause, Step, Steps, run_async
from dispatcher.engine.worker import Worker
from dispatcher.errors import StoreUnavailable
from dispatcher.gateway.client import new_async_session

log = logging.getLogger("dispatcher.worker")

HOLD_S = 60.0  # a Celery thread waits this long for its lane at most (then it goes on alone)
RESERVED_THREADS = 4  # Celery threads of a process never held by a lane


class SendLoop:
    """A worker process's event loop and the lanes that drain its queues on it."""

    def __init__(self, worker: Worker, in_flight: int | None = None) -> None:
        self.worker = worker
        self.in_flight = in_flight or worker.settings.worker_in_flight
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True, name="waapi-sends")
        self._started = threading.Event()
        self._http: aiohttp.ClientSession | None = None
        self._lanes: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._places = asyncio.Semaphore(self.in_flight)  # a lane holds one while it works
        # Celery threads waiting for their lane (drain), and how many may.
        self._holding = 0
        self._holding_lock = threading.Lock()
        self._may_hold = max(0, worker.settings.worker_concurrency - RESERVED_THREADS)

    # --- from any thread -----------------------------------------------------------------

    def start(self) -> SendLoop:
        self._thread.start()
        self._started.wait()
        return self

    def drain(self, queue: str) -> None:
        """A message came to ``queue`` (Celery delivered one): drain it on the loop. The
        calling Celery thread waits while its lane has work (at most ``HOLD_S``), so
        that Celery delivers no faster than lanes finish: a delivery costs a round trip
        over every queue the process consumes, and the Celery path's own send, far more
        than a lane's. ``RESERVED_THREADS`` of the process's threads are never held
        this way: batches and maintenance (the tick) always find one."""
        with self._holding_lock:
            hold = self._holding < self._may_hold
            self._holding += hold
        try:
            hold_s = HOLD_S if hold else 0.0
            asyncio.run_coroutine_threadsafe(self._lane_now(queue, hold_s), self._loop).result()
        finally:
            with self._holding_lock:
                self._holding -= hold

    def handle_batch(self, jobs: Any) -> list[str]:
        """:meth:`Worker.handle_batch` on the loop: the batch's lanes (up to
        ``WORKER_CONCURRENCY`` of them, each holding one of the loop's
        ``WORKER_IN_FLIGHT`` places while it works) run there, and the calling Celery
        thread waits for the batch's states. A lane that lost Redis stops; the others
        finish, then the error is raised (the batch message is delivered again, and its
        jobs' claims say which are done)."""
        if not isinstance(jobs, list):
            return [self.worker.refuse_batch()]
        done = asyncio.run_coroutine_threadsafe(self._batch(jobs), self._loop)
        return done.result()

    def close(self, timeout_s: float | None = None) -> None:
        """Take nothing more; wait for the sends in flight to be recorded (at most
        ``timeout_s``: by default the gateway's read timeout and a margin), then stop."""
        if not self._thread.is_alive():
            return
        settings = self.worker.settings
        wait_s = timeout_s if timeout_s is not None else settings.waapi_read_timeout_s + 10
        try:
            asyncio.run_coroutine_threadsafe(self._close(wait_s), self._loop).result(wait_s + 5)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    @property
    def lanes(self) -> int:
        return len(self._lanes)

    # --- on the loop ---------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._open())
        self._started.set()
        self._loop.run_forever()
        self._loop.close()

    async def _open(self) -> None:
        settings = self.worker.settings
        self._http = new_async_session(
            settings.waapi_connect_timeout_s,
            settings.waapi_read_timeout_s,
            self.in_flight,
            settings.waapi_base_url,
        )

    async def _close(self, wait_s: float) -> None:
        self._stopping = True
        if self._lanes:
            _, late = await asyncio.wait(set(self._lanes), timeout=wait_s)
            if late:
                log.warning(
                    "%d sends still in flight at shutdown: recovery settles them", len(late)
                )
        if self._http is not None:
            await self._http.close()

    async def perform(self, step: Step) -> Any:
        """A step of the worker's logic, on the loop (:func:`run_async`)."""
        if isinstance(step, Pause):
            await asyncio.sleep(step.seconds)
            return None
        assert self._http is not None
        return await step.client.call_async(self._http, step.request)

    async def _batch(self, jobs: list[Any]) -> list[str]:
        states, lanes = self.worker.batch(jobs, self.worker.settings.worker_concurrency)
        ended = await asyncio.gather(
            *(self._in_place(lane) for lane in lanes), return_exceptions=True
        )
        for outcome in ended:
            if isinstance(outcome, BaseException):
                raise outcome
        return states

    async def _in_place(self, lane: Steps[None]) -> None:
        """Run a lane once one of the loop's places is free."""
        async with self._places:
            task = asyncio.current_task()
            assert task is not None
            self._lanes.add(task)
            try:
                await run_async(lane, self.perform)
            finally:
                self._lanes.discard(task)

    def _add_lane(self, queue: str) -> None:
        if self._stopping or self._places.locked():
            return
        lane = self._loop.create_task(self._lane(queue))
        self._lanes.add(lane)
        lane.add_done_callback(self._lanes.discard)

    async def _lane_now(self, queue: str, hold_s: float) -> None:
        """Drains (each within its budget, ``WORKER_DRAIN_JOBS``, ``WORKER_DRAIN_S``, as
        on a thread) for the Celery thread that waits, for ``hold_s`` at most; what is
        left goes on in a lane of its own."""
        if self._stopping:
            return
        lane = asyncio.current_task()
        assert lane is not None
        self._lanes.add(lane)
        until = self._loop.time() + hold_s
        try:
            async with self._places:
                while await self._drain_once(queue):
                    if self._loop.time() >= until:
                        break
                else:
                    return  # nothing left to take
            self._add_lane(queue)  # (none when the loop is stopping or full)
        finally:
            self._lanes.discard(lane)

    def _go_on(self, queue: str) -> bool:
        """A lane took a message: there may be more, so start another lane (up to the
        limit); and go on unless the loop is stopping."""
        self._add_lane(queue)
        return not self._stopping

    async def _lane(self, queue: str) -> None:
        """Drain until nothing is left to take."""
        async with self._places:
            while not self._stopping and await self._drain_once(queue):
                pass

    async def _drain_once(self, queue: str) -> int:
        """:meth:`Worker.drain` on the loop; how many messages it took (0 when it
        stopped on an error, logged here: its claims are given back, or recovered)."""
        try:
            steps = self.worker.drain(queue, lambda: self._go_on(queue))
            return await run_async(steps, self.perform)
        except StoreUnavailable as exc:
            log.warning("a send lane stopped: Redis is unavailable: %s", exc)
        except Exception:
            log.exception("a send lane failed")
        return 0
