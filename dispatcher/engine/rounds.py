"""The send loop's Redis round trips: the rounds of every send ready in one turn of the
loop, in one pipeline.

Each send asks Redis for three things (its claim, its admission, its outcome), each a
:class:`~dispatcher.ledger.scripts.StoreRound`. Made one by one on the loop's thread,
every send waited behind the others' round trips: 1,039 msg/s through three worker
processes, 0.77 ms of worker CPU per message. Gathered per turn of the loop into one
pipeline: 2,128 msg/s and 0.40 ms, on the same machine in the same hour. Handing the
pipeline to a thread of its own, so that the loop went on with HTTP meanwhile, gave
1,511-1,600 msg/s and 0.57-0.62 ms (the two threads took turns with the GIL on every
pipeline). So the pipeline goes out on the loop's own connection and its replies are
read when they come (:class:`~dispatcher.engine.wire.Wire`): the loop is not held while
Redis runs the scripts, and one pipeline is out at a time, so that what the lanes ask
meanwhile goes together in the next (sending each turn's rounds at once made smaller
pipelines and a slower p99). A pipeline that must wait for replicas, or a TLS
connection, is made as before, on the loop's thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from dispatcher.engine.wire import Wire
from dispatcher.errors import StoreUnavailable
from dispatcher.ledger.scripts import StoreRound, round_answers, round_commands, run_rounds

log = logging.getLogger("dispatcher.worker")

Asked = tuple[StoreRound, "asyncio.Future[list[Any]]"]


class RoundTrips:
    """The store rounds of one event loop's sends, together (every method on its
    thread)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._asked: list[Asked] = []
        self._wires: dict[int, Wire] = {}  # by id(client): the loop's own connections
        self._on_wire = 0  # pipelines sent and not yet answered

    def ask(self, step: StoreRound) -> asyncio.Future[list[Any]]:
        """The round's answer (its results, or the error it met), once its pipeline
        comes back."""
        answer: asyncio.Future[list[Any]] = self._loop.create_future()
        if not self._asked and not self._on_wire:
            self._loop.call_soon(self._send)  # after the other sends ready in this turn
        self._asked.append((step, answer))  # (or with the answer of the pipeline out)
        return answer

    def close(self) -> None:
        """Give the wires' connections back (on the loop, as it stops)."""
        for wire in self._wires.values():
            wire.close()
        self._wires.clear()

    def _send(self) -> None:
        asked, self._asked = self._asked, []
        together: dict[tuple[int, int], list[Asked]] = {}
        for item in asked:
            step = item[0]
            together.setdefault((id(step.client), id(step.confirm)), []).append(item)
        for group in together.values():
            first = group[0][0]
            try:
                if first.confirm is None and Wire.serves(first.client):
                    self._on_the_wire(group)  # answered when the replies come
                else:  # a WAIT for replicas, or TLS: the pipeline as redis-py makes it
                    rounds = [step.calls for step, _ in group]
                    _answer(group, run_rounds(first.client, first.confirm, rounds))
            except Exception as exc:  # a bug, not Redis (rounds answer those one by one):
                log.exception("a pipeline of Redis rounds failed")  # no lane waits forever
                _fail(group, f"redis rounds: {type(exc).__name__}")

    def _on_the_wire(self, group: list[Asked]) -> None:
        client = group[0][0].client
        wire = self._wires.get(id(client))
        if wire is None:
            wire = self._wires[id(client)] = Wire(self._loop, client)
        rounds = [step.calls for step, _ in group]
        replies = wire.send(round_commands(rounds))
        self._on_wire += 1

        def answered(replies: asyncio.Future[list[Any]]) -> None:
            self._on_wire -= 1
            if self._asked and not self._on_wire:
                self._loop.call_soon(self._send)  # what was asked meanwhile, together
            error = replies.exception()
            if error is not None:
                _fail(group, f"redis: {type(error).__name__}: {error}")
                return
            try:
                _answer(group, round_answers(client, None, rounds, replies.result()))
            except Exception as exc:  # a bug: no lane waits forever
                log.exception("answering a pipeline of Redis rounds failed")
                _fail(group, f"redis rounds: {type(exc).__name__}")

        replies.add_done_callback(answered)


def _fail(group: list[Asked], why: str) -> None:
    _answer(group, [StoreUnavailable(why) for _ in group])


def _answer(group: list[Asked], answers: Sequence[list[Any] | Exception]) -> None:
    for (_, future), got in zip(group, answers, strict=True):
        if future.done():  # its lane was cancelled (the loop is stopping)
            continue
        if isinstance(got, Exception):
            future.set_exception(got)
        else:
            future.set_result(got)
