"""An attempt's waits as values, so that one copy of the worker's logic runs on threads
and on an event loop.

The worker's logic (:mod:`dispatcher.engine.worker`) is written as generators that
yield what they wait for: a :class:`Pause` (a slot under the rate limits, a short retry,
Redis coming back), a :class:`GatewayCall`, or a
:class:`~dispatcher.ledger.scripts.StoreRound` (the claim, the admission, the outcome:
the scripts of one round trip to Redis). A driver performs each: :func:`run` on the
calling thread (``time.sleep``, the client's pooled ``urllib3`` call, the round trip
made at once), :func:`run_async` on an event loop (``asyncio.sleep``, ``aiohttp``, the
rounds of every send ready at the same moment in one pipeline), where hundreds of
attempts wait at once without a thread each. Redis calls off the hot path (a cooldown,
a release, a window) are not steps: they are made where the logic stands.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar

from dispatcher.gateway.client import WaapiClient
from dispatcher.gateway.kinds import ContactRequest, SendRequest
from dispatcher.ledger.scripts import StoreRound

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Pause:
    """Wait this long before going on."""

    seconds: float


@dataclass(frozen=True, slots=True)
class GatewayCall:
    """Send ``request`` with ``client``; the answer is the message id (None for a contact
    write), or the call raises the gateway's error into the logic."""

    client: WaapiClient
    request: SendRequest | ContactRequest


Step = Pause | GatewayCall | StoreRound
Steps = Generator[Step, Any, T]


def run(steps: Steps[T], sleep: Callable[[float], None]) -> T:
    """Drive ``steps`` on the calling thread: pauses are slept, calls made in turn."""
    answer: Any = None
    error: Exception | None = None
    try:
        while True:
            step = _resume(steps, answer, error)
            answer, error = None, None
            try:
                answer = _now(step, sleep)
            except Exception as exc:  # handed to the logic, which decides
                error = exc
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def _now(step: Step, sleep: Callable[[float], None]) -> Any:
    if isinstance(step, Pause):
        sleep(step.seconds)
        return None
    if isinstance(step, StoreRound):
        return step.now()
    return step.client.call(step.request)


async def run_async(steps: Steps[T], perform: Callable[[Step], Awaitable[Any]]) -> T:
    """Drive ``steps`` on the running event loop; ``perform`` awaits each step. A
    cancelled task closes its steps (their ``finally`` clauses run)."""
    answer: Any = None
    error: Exception | None = None
    try:
        while True:
            step = _resume(steps, answer, error)
            try:
                answer, error = await perform(step), None
            except asyncio.CancelledError:
                steps.close()
                raise
            except Exception as exc:  # handed to the logic, which decides
                answer, error = None, exc
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def _resume(steps: Steps[Any], answer: Any, error: Exception | None) -> Step:
    """The logic's next step, given the last one's answer or error (StopIteration with
    the logic's result when it is done)."""
    return steps.send(answer) if error is None else steps.throw(error)
