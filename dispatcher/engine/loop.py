"""The send loop: one event loop per worker process, where every send of the process is
made, hundreds at a time if need be, without a thread each.

A thread per send costs more than the send: with 32 threads a process spent more of its
time switching and contending for the GIL than calling the gateway. Here a worker
process runs one asyncio loop on a thread of its own. A job Celery delivers is handed
to the loop (:meth:`SendLoop.handle`, the Celery thread waits for its state); after a
transactional job the loop drains that queue, and the other transactional queues the
process serves, in *lanes*; campaign batches run as lanes too
(:meth:`SendLoop.handle_batch`). A lane is the worker's own logic (``Worker.drain``,
``Worker.batch``) driven by :func:`~dispatcher.engine.steps.run_async`, so claims,
admissions, leases, outcomes and every recovery rule are unchanged. A lane that takes a
message starts another while fewer than ``WORKER_IN_FLIGHT`` run and the loop keeps
time, so the lanes follow the work: one for a trickle, dozens for a backlog. Gateway
calls go through one pooled ``aiohttp`` session; the lanes' Redis round trips (claims,
admissions, outcomes) ready in one turn of the loop go together in one pipeline
(:mod:`dispatcher.engine.rounds`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any

import aiohttp

from dispatcher.engine.rounds import RoundTrips
from dispatcher.engine.steps import Pause, Step, Steps, run_async
from dispatcher.engine.worker import Worker
from dispatcher.errors import StoreUnavailable
from dispatcher.gateway.client import new_async_session
from dispatcher.job.queues import is_transactional
from dispatcher.ledger.scripts import StoreRound

log = logging.getLogger("dispatcher.worker")

HOLD_S = 60.0  # a Celery thread waits this long for its lane at most (then it goes on alone)
RESERVED_THREADS = 4  # Celery threads of a process never held by a lane
# A held thread whose drain found its queue empty rests until this long after its
# delivery: a thread free again at once took the next delivery, and a delivery costs far
# more than the take of a lane, which the process's sends make with their outcomes. At
# 1,600 msg/s (3 workers, 50 ms gateway): 0.31 Celery deliveries a message and 0.56-0.61 ms
# of the workers' CPU a message without the rest; 0.15 and 0.49-0.52 ms with it.
MIN_HOLD_S = 1.0
# Every lane's work, and the pipeline of their Redis rounds, runs on the loop's thread: a
# loop that runs late delays every send it holds. No lane is added while it runs this
# late (measured every LAG_PROBE_S).
MAX_LAG_S = 0.01
LAG_PROBE_S = 0.01
# Campaign batches may hold this share of a loop's places at most: the rest is kept for
# transactional sends, which never wait behind a bulk backlog for one (64 of the shipped
# 256: 1,280 sends a second at 50 ms of gateway latency). Half held a campaign to 128
# lanes a process, every one busy, which bound it on the benchmark machine
# (docs/performance.md).
BULK_SHARE = 0.75


class SendLoop:
    """A worker process's event loop and the lanes that drain its queues on it."""

    def __init__(self, worker: Worker, threads: int | None = None) -> None:
        """``threads``: the Celery threads of the process (default WORKER_CONCURRENCY)."""
        self.worker = worker
        self.in_flight = worker.settings.worker_in_flight
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True, name="waapi-sends")
        self._started = threading.Event()
        self._http: aiohttp.ClientSession | None = None
        self._lanes: set[asyncio.Task[None]] = set()
        self._round_trips = RoundTrips(self._loop)  # the lanes' Redis calls, together
        self._stopping = False
        self._stopped = asyncio.Event()  # set as the loop stops (ends the threads' rests)
        self._places = asyncio.Semaphore(self.in_flight)  # a lane holds one while it works
        self._bulk_lanes = max(1, int(self.in_flight * BULK_SHARE))
        self._bulk_places = asyncio.Semaphore(self._bulk_lanes)
        self._lag_s = 0.0  # how late the loop ran its last probe
        self._probe: asyncio.Task[None] | None = None
        # Celery threads waiting for their lane (drain), and how many may.
        self._holding = 0
        self._holding_lock = threading.Lock()
        self._may_hold = max(0, (threads or worker.settings.worker_concurrency) - RESERVED_THREADS)

    # --- from any thread -----------------------------------------------------------------

    def start(self) -> SendLoop:
        self._thread.start()
        self._started.wait()
        return self

    def handle(self, job: Any, queue: str, job_id: Any = None) -> str:
        """A job Celery delivered from ``queue``: sent on the loop, and for a
        transactional queue what else waits there drained after it. The calling Celery
        thread waits for the job's state, and while the drain has work (at most
        ``HOLD_S``; at least ``MIN_HOLD_S`` after the delivery), so that Celery delivers
        no faster than lanes finish: a delivery costs a round trip over every queue the
        process consumes, far more than a lane's take. ``RESERVED_THREADS`` of the
        process's threads are never held by a drain: batches and maintenance (the tick)
        always find one. The thread itself
        does no work meanwhile: every send of the process is on the loop (sending the
        delivered job on the thread, as before, gave 133 ms p50 added latency at half
        load against 63 ms)."""
        with self._holding_lock:
            hold = is_transactional(queue) and self._holding < self._may_hold
            self._holding += hold
        try:
            work = self._handle(self.worker.handle_steps(job, job_id, queue), queue, hold)
            return asyncio.run_coroutine_threadsafe(work, self._loop).result()
        finally:
            with self._holding_lock:
                self._holding -= hold

    def handle_batch(self, jobs: Any, queue: str = "") -> list[str]:
        """A campaign batch (:meth:`Worker.batch`) on the loop: its lanes run there, one
        a job (not one a Celery thread: a few threads carry a campaign at the loop's
        rate), each holding one of the loop's ``WORKER_IN_FLIGHT`` places while it
        works, batches ``BULK_SHARE`` of them at most; the calling Celery thread waits
        for the batch's states. A lane that lost Redis stops; the others finish, then the
        error is raised (the batch message is delivered again, and its jobs' claims say
        which are done)."""
        if not isinstance(jobs, list):
            return [self.worker.refuse_batch()]
        done = asyncio.run_coroutine_threadsafe(self._batch(jobs, queue), self._loop)
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

    # --- on the loop ---------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._open())
        self._started.set()
        self._loop.run_forever()
        self._loop.close()

    async def _probe_lag(self) -> None:
        while True:
            started = self._loop.time()
            await asyncio.sleep(LAG_PROBE_S)
            self._lag_s = self._loop.time() - started - LAG_PROBE_S

    async def _open(self) -> None:
        self._probe = self._loop.create_task(self._probe_lag())
        settings = self.worker.settings
        self._http = new_async_session(
            settings.waapi_connect_timeout_s,
            settings.waapi_read_timeout_s,
            self.in_flight,
            settings.waapi_base_url,
        )

    async def _close(self, wait_s: float) -> None:
        self._stopping = True
        self._stopped.set()
        if self._probe is not None:
            self._probe.cancel()
        if self._lanes:
            _, late = await asyncio.wait(set(self._lanes), timeout=wait_s)
            if late:
                log.warning(
                    "%d sends still in flight at shutdown: recovery settles them", len(late)
                )
        if self._http is not None:
            await self._http.close()
        self._round_trips.close()

    async def perform(self, step: Step) -> Any:
        """A step of the worker's logic, on the loop (:func:`run_async`)."""
        if isinstance(step, Pause):
            await asyncio.sleep(step.seconds)
            return None
        if isinstance(step, StoreRound):
            return await self._round_trips.ask(step)
        assert self._http is not None
        return await step.client.call_async(self._http, step.request)

    async def _batch(self, jobs: list[Any], queue: str) -> list[str]:
        states, lanes = self.worker.batch(jobs, self._bulk_lanes, queue)
        ended = await asyncio.gather(
            *(self._in_place(lane) for lane in lanes), return_exceptions=True
        )
        for outcome in ended:
            if isinstance(outcome, BaseException):
                raise outcome
        return states

    async def _in_place(self, lane: Steps[None]) -> None:
        """Run a batch's lane once one of the loop's places (and of bulk's) is free."""
        async with self._bulk_places, self._places:
            task = asyncio.current_task()
            assert task is not None
            self._lanes.add(task)
            try:
                await run_async(lane, self.perform)
            finally:
                self._lanes.discard(task)

    def _add_lane(self, queue: str) -> None:
        if self._stopping or self._places.locked() or self._lag_s > MAX_LAG_S:
            return
        lane = self._loop.create_task(self._lane(queue))
        self._lanes.add(lane)
        lane.add_done_callback(self._lanes.discard)

    async def _handle(self, steps: Steps[str], queue: str, hold: bool) -> str:
        """The job, then drains of a transactional queue (each within its budget,
        ``WORKER_DRAIN_JOBS``, ``WORKER_DRAIN_S``) while the thread is held (``HOLD_S``
        at most): what is left then goes on in a lane of its own. A held thread whose
        drain found the queue empty rests (``MIN_HOLD_S``)."""
        lane = asyncio.current_task()
        assert lane is not None
        self._lanes.add(lane)
        delivered = self._loop.time()
        until = delivered + (HOLD_S if hold else 0.0)
        left = False  # the hold ran out with work left in the queue
        try:
            async with self._places:
                state = await run_async(steps, self.perform)
                if self._stopping or not is_transactional(queue):
                    return state
                while await self._drain_once(queue):
                    if self._loop.time() >= until:
                        left = True
                        break
            if left:
                self._add_lane(queue)  # (none when the loop is stopping or full)
            elif hold:  # (without a place: it sends nothing)
                await self._rest(delivered + MIN_HOLD_S)
            return state
        finally:
            self._lanes.discard(lane)

    async def _rest(self, until: float) -> None:
        """Wait until loop time ``until``, or until the loop stops."""
        wait_s = until - self._loop.time()
        if wait_s > 0 and not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), wait_s)

    def _go_on(self, queue: str, backlog: int) -> bool:
        """A lane took a message and ``backlog`` more wait in its queue: the lanes are
        behind, so start another (up to the limit); and go on unless the loop is
        stopping. (A lane started on every take mostly found nothing: at 1,500 msg/s,
        3.5 empty takes a message.)"""
        if backlog > 0:
            self._add_lane(queue)
        return not self._stopping

    async def _lane(self, queue: str) -> None:
        """Drain until a drain runs out of messages."""
        async with self._places:
            while not self._stopping and await self._drain_once(queue):
                pass

    async def _drain_once(self, queue: str) -> bool:
        """:meth:`Worker.drain` on the loop; whether it spent its budget, so that work
        may be left. False when it ran out of messages (draining again at once would find
        the queues empty: an empty take), or stopped on an error (logged here: its claims
        are given back, or recovered)."""
        try:
            steps = self.worker.drain(queue, lambda backlog: self._go_on(queue, backlog))
            return (await run_async(steps, self.perform)).spent
        except StoreUnavailable as exc:
            log.warning("a send lane stopped: Redis is unavailable: %s", exc)
        except Exception:
            log.exception("a send lane failed")
        return False
