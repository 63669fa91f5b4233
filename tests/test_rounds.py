"""The send loop's Redis rounds (``dispatcher/engine/rounds.py``) on a real Redis: the
rounds asked in one turn of an event loop go together, each gets its own answers (or its
own error) in the order asked, and a call whose library Redis does not have is made
again once the library is loaded."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from dispatcher.engine.rounds import RoundTrips
from dispatcher.errors import StoreUnavailable
from dispatcher.ledger.connection import SOCKET_TIMEOUT_S, connect
from dispatcher.ledger.scripts import FunctionCall, Library, StoreRound
from tests.support.processes import RedisProcess
from tests.support.stack import make_settings

LIBRARY = Library.of(
    "test_rounds",
    "",
    {
        "count": "return {ARGV[1], redis.call('INCR', KEYS[1])}",
        "wrong_type": "return redis.call('HGET', KEYS[1], 'field')",  # KEYS[1] holds a string
    },
)
COUNT, WRONG_TYPE = LIBRARY.function("count"), LIBRARY.function("wrong_type")


def ask_together(rounds: list[StoreRound]) -> list[list[Any] | BaseException]:
    """Ask every round in one turn of a fresh event loop; each one's answer or error."""

    async def main() -> list[list[Any] | BaseException]:
        trips = RoundTrips(asyncio.get_running_loop())
        answers = [trips.ask(step) for step in rounds]
        return await asyncio.gather(*answers, return_exceptions=True)

    return asyncio.run(main())


def test_each_round_gets_its_own_answers_in_the_order_asked(redis_client: redis.Redis) -> None:
    one = StoreRound(redis_client, (FunctionCall(COUNT, ("n",), ("a",)),))
    two = StoreRound(
        redis_client, (FunctionCall(COUNT, ("n",), ("b",)), FunctionCall(COUNT, ("n",), ("c",)))
    )
    three = StoreRound(redis_client, (FunctionCall(COUNT, ("n",), ("d",)),))
    assert ask_together([one, two, three]) == [
        [[b"a", 1]],
        [[b"b", 2], [b"c", 3]],  # a round's scripts one after the other
        [[b"d", 4]],
    ]


def test_a_failing_round_fails_alone(redis_client: redis.Redis) -> None:
    redis_client.set("plain", "a string")
    answers = ask_together(
        [
            StoreRound(redis_client, (FunctionCall(COUNT, ("n",), ("a",)),)),
            StoreRound(redis_client, (FunctionCall(WRONG_TYPE, ("plain",), ()),)),
            StoreRound(redis_client, (FunctionCall(COUNT, ("n",), ("b",)),)),
        ]
    )
    assert answers[0] == [[b"a", 1]] and answers[2] == [[b"b", 2]]
    assert isinstance(answers[1], StoreUnavailable)
    assert "WRONGTYPE" in str(answers[1])


@pytest.mark.parametrize("rounds", [1, 3])
def test_a_library_redis_lost_is_loaded_and_its_calls_made_again(
    redis_client: redis.Redis, rounds: int
) -> None:
    LIBRARY.load(redis_client)
    redis_client.function_flush()  # a Redis restarted without its functions
    asked = [
        StoreRound(redis_client, (FunctionCall(COUNT, ("n",), (str(n),)),)) for n in range(rounds)
    ]
    assert ask_together(asked) == [[[str(n).encode(), n + 1]] for n in range(rounds)]
    assert redis_client.get("n") == str(rounds).encode()  # each ran once


def test_a_redis_that_is_gone_fails_every_round_of_the_pipeline() -> None:
    count_on_nothing = redis.Redis(port=1, socket_connect_timeout=1)  # nothing listens there
    answers = ask_together(
        [StoreRound(count_on_nothing, (FunctionCall(COUNT, ("n",), (str(n),)),)) for n in range(2)]
    )
    assert all(isinstance(answer, StoreUnavailable) for answer in answers)
    assert answers[0] is not answers[1]  # each lane gets an error of its own


def test_rounds_on_a_redis_that_stops_answering_fail_in_the_socket_timeout_and_the_loop_runs_on(
    tmp_path: Path,
) -> None:
    """The rounds' pipeline is read when Redis answers, not waited for: a Redis that stops
    answering (SIGSTOP) fails the rounds on the wire after the client's socket timeout
    (the shipped one), the event loop keeps running meanwhile, and the next round
    connects again."""
    server = RedisProcess.start(tmp_path / "redis")
    client = connect(make_settings(server.url))

    def one(n: int) -> StoreRound:
        return StoreRound(client, (FunctionCall(COUNT, ("n",), (str(n),)),))

    async def main() -> tuple[list[Any], float, int, list[Any]]:
        trips = RoundTrips(asyncio.get_running_loop())
        assert await trips.ask(one(0)) == [[b"0", 1]]
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.1)
                ticks += 1

        ticker = asyncio.create_task(tick())
        server.proc.send_signal(signal.SIGSTOP)
        started = time.monotonic()
        stuck = await asyncio.gather(trips.ask(one(1)), trips.ask(one(2)), return_exceptions=True)
        waited = time.monotonic() - started
        ticker.cancel()
        server.proc.send_signal(signal.SIGCONT)
        again = await trips.ask(one(3))
        trips.close()
        return stuck, waited, ticks, again

    try:
        stuck, waited, ticks, again = asyncio.run(main())
    finally:
        server.proc.send_signal(signal.SIGCONT)
        server.proc.kill()
        server.proc.wait()
    assert all(isinstance(answer, StoreUnavailable) for answer in stuck), stuck
    assert "Timeout" in str(stuck[0])
    assert SOCKET_TIMEOUT_S - 0.5 <= waited <= SOCKET_TIMEOUT_S + 5
    assert ticks >= waited * 10 * 0.5  # the loop was never held by the wait
    assert again[0][0] == b"3"  # a new connection
