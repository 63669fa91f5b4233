"""The send loop's Redis rounds (``dispatcher/engine/rounds.py``) on a real Redis: the
rounds asked in one turn of an event loop go together, each gets its own answers (or its
own error) in the order asked, and a script Redis has lost is loaded and run again."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis

from dispatcher.engine.rounds import RoundTrips
from dispatcher.errors import StoreUnavailable
from dispatcher.ledger.scripts import ScriptCall, StoreRound

COUNT = "return {ARGV[1], redis.call('INCR', KEYS[1])}"
WRONG_TYPE = "return redis.call('HGET', KEYS[1], 'field')"  # KEYS[1] holds a string


def ask_together(rounds: list[StoreRound]) -> list[list[Any] | BaseException]:
    """Ask every round in one turn of a fresh event loop; each one's answer or error."""

    async def main() -> list[list[Any] | BaseException]:
        trips = RoundTrips(asyncio.get_running_loop())
        answers = [trips.ask(step) for step in rounds]
        return await asyncio.gather(*answers, return_exceptions=True)

    return asyncio.run(main())


def test_each_round_gets_its_own_answers_in_the_order_asked(redis_client: redis.Redis) -> None:
    count = redis_client.register_script(COUNT)
    one = StoreRound(redis_client, (ScriptCall(count, ("n",), ("a",)),))
    two = StoreRound(
        redis_client, (ScriptCall(count, ("n",), ("b",)), ScriptCall(count, ("n",), ("c",)))
    )
    three = StoreRound(redis_client, (ScriptCall(count, ("n",), ("d",)),))
    assert ask_together([one, two, three]) == [
        [[b"a", 1]],
        [[b"b", 2], [b"c", 3]],  # a round's scripts one after the other
        [[b"d", 4]],
    ]


def test_a_failing_round_fails_alone(redis_client: redis.Redis) -> None:
    count = redis_client.register_script(COUNT)
    wrong = redis_client.register_script(WRONG_TYPE)
    redis_client.set("plain", "a string")
    answers = ask_together(
        [
            StoreRound(redis_client, (ScriptCall(count, ("n",), ("a",)),)),
            StoreRound(redis_client, (ScriptCall(wrong, ("plain",), ()),)),
            StoreRound(redis_client, (ScriptCall(count, ("n",), ("b",)),)),
        ]
    )
    assert answers[0] == [[b"a", 1]] and answers[2] == [[b"b", 2]]
    assert isinstance(answers[1], StoreUnavailable)
    assert "WRONGTYPE" in str(answers[1])


@pytest.mark.parametrize("rounds", [1, 3])
def test_scripts_redis_lost_are_loaded_and_run_again(
    redis_client: redis.Redis, rounds: int
) -> None:
    count = redis_client.register_script(COUNT)
    redis_client.script_flush()  # a Redis restarted without its scripts: NOSCRIPT
    asked = [
        StoreRound(redis_client, (ScriptCall(count, ("n",), (str(n),)),)) for n in range(rounds)
    ]
    assert ask_together(asked) == [[[str(n).encode(), n + 1]] for n in range(rounds)]
    assert redis_client.get("n") == str(rounds).encode()  # each ran once


def test_a_redis_that_is_gone_fails_every_round_of_the_pipeline() -> None:
    count_on_nothing = redis.Redis(port=1, socket_connect_timeout=1)  # nothing listens there
    script = count_on_nothing.register_script(COUNT)
    answers = ask_together(
        [StoreRound(count_on_nothing, (ScriptCall(script, ("n",), (str(n),)),)) for n in range(2)]
    )
    assert all(isinstance(answer, StoreUnavailable) for answer in answers)
    assert answers[0] is not answers[1]  # each lane gets an error of its own
