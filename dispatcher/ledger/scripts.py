"""The ledger's Lua scripts, loaded once per process and called by name.

Two conventions, each stated at the top of every script:

- **Ledger scripts** (every name in ``NAMES``) are ``prelude.lua`` and ``throttle.lua``
  followed by their own body. They declare no KEYS: each reaches keys it derives from
  the job it reads (the job's queue, its campaign, its pair), which Redis cannot be told
  beforehand, so they build them from the prefix with the prelude's ``K`` (the key
  schema, ``schema.py``); this assumes one Redis, not a cluster. ARGV[1..4] are always
  the prefix, now (ms), the events stream's cap and the retention of settled jobs (s);
  the script's own arguments follow from ARGV[5], named in its header.
- **The admission script** (``admit.lua``, run by ``engine.limiter``) touches only keys
  the caller computed, so it declares them all as KEYS and stands alone (no prelude).

``throttle.lua`` (the adaptive throttle's counting) precedes both kinds: admission
counts a call it holds back, ``finish.lua`` a call made. ``admit.lua`` defines the
admission as a function: the admission script calls it with its KEYS and ARGV, and
``take.lua`` and ``claim.lua`` (``ADMITTING``) with the admission the caller planned
for the job they claim.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from functools import cache, wraps
from importlib import resources
from typing import Any, ParamSpec, TypeVar

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from dispatcher.errors import StoreUnavailable
from dispatcher.ledger import schema
from dispatcher.ledger.connection import store_errors
from dispatcher.ledger.replicas import ReplicaConfirm

NAMES = (
    "enqueue",
    "claim",
    "take",
    "finish",
    "tick",
    "release",
    "status",
    "camp_launch",
    "refuse",
    "recover",
    "unclaim",
)


def _lua(name: str) -> str:
    return (resources.files("dispatcher.ledger") / "lua" / f"{name}.lua").read_text()


# Ledger scripts that admit what they claim (admit.lua's function, before their body).
ADMITTING = frozenset({"take", "claim"})


@cache
def _source(name: str) -> str:
    admits = (_lua("admit"),) if name in ADMITTING else ()
    return "\n".join((_lua("prelude"), _lua("throttle"), *admits, _lua(name)))


@cache
def admit_source() -> str:
    """The admission script (declared KEYS, no prelude; the throttle's counting)."""
    return "\n".join((_lua("throttle"), _lua("admit"), "return admit(KEYS, ARGV)"))


# The writes the dispatcher stands on: an enqueue it acknowledges, a claim it sends under.
# With REDIS_CONFIRM_REPLICAS they wait for replicas (replicas.py) before they count.
CONFIRMED = frozenset({"enqueue", "claim", "take"})


@dataclass(frozen=True, slots=True)
class ScriptCall:
    """One EVALSHA: the script (its digest, and its source for a Redis that lost it),
    its keys and its arguments."""

    script: Script
    keys: tuple[Any, ...]
    args: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class StoreRound:
    """Scripts to run one after the other in one round trip; the answer is their results,
    in order. A value, so that the worker's logic can yield it as a step: run at once on
    a thread (:meth:`now`), or with the rounds of other sends ready at the same moment
    in one pipeline (the send loop, :func:`run_rounds`)."""

    client: redis.Redis
    calls: tuple[ScriptCall, ...]
    confirm: ReplicaConfirm | None = None  # a WAIT for the replicas after the writes

    def now(self) -> list[Any]:
        [answers] = run_rounds(self.client, self.confirm, [self.calls])
        if isinstance(answers, Exception):
            raise answers
        return answers


T = TypeVar("T")
P = ParamSpec("P")
StoreSteps = Generator[StoreRound, list[Any], T]


def now(steps: StoreSteps[T]) -> T:
    """Drive ``steps`` on this thread: each round trip made as it is asked for."""
    ask = next(steps)
    while True:
        try:
            ask = steps.send(ask.now())
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


def at_once(steps: Callable[P, StoreSteps[T]]) -> Callable[P, T]:
    """The plain form of a steps method (same arguments, same docstring): its rounds made
    on the caller's thread (:func:`now`), for every caller but the send loop. One
    definition serves both, so the arguments are declared once."""

    @wraps(steps)
    def at_once(*args: P.args, **kwargs: P.kwargs) -> T:
        return now(steps(*args, **kwargs))

    return at_once


def run_rounds(
    client: redis.Redis,
    confirm: ReplicaConfirm | None,
    rounds: Sequence[Sequence[ScriptCall]],
) -> list[list[Any] | StoreUnavailable]:
    """Run ``rounds`` in one pipeline, in order; each round's results, or the error it
    met. EVALSHA straight on the pipeline: a redis-py Script on a pipeline asks SCRIPT
    EXISTS first, a round trip of its own. A script Redis no longer knows (restarted,
    flushed, a new master) is loaded and run again: NOSCRIPT means it did not run.
    ``confirm``: every round is a write the replicas must have (a WAIT closes the
    pipeline)."""
    pipe = client.pipeline(transaction=False)
    for _evalsha, *arguments in round_commands(rounds):
        pipe.evalsha(*arguments)
    needed = 0
    try:
        if confirm is not None:
            needed = confirm.needed()
            pipe.wait(needed, confirm.timeout_ms)
        with store_errors():
            results = pipe.execute(raise_on_error=False)
        if confirm is not None:
            confirm.check(results[-1], needed)
    except StoreUnavailable as exc:
        return [StoreUnavailable(*exc.args) for _ in rounds]
    return round_answers(client, confirm, rounds, results)


def round_commands(rounds: Sequence[Sequence[ScriptCall]]) -> list[tuple[Any, ...]]:
    """The EVALSHA of every call of ``rounds``, in order."""
    return [
        ("EVALSHA", call.script.sha, len(call.keys), *call.keys, *call.args)
        for calls in rounds
        for call in calls
    ]


def round_answers(
    client: redis.Redis,
    confirm: ReplicaConfirm | None,
    rounds: Sequence[Sequence[ScriptCall]],
    results: Sequence[Any],
) -> list[list[Any] | StoreUnavailable]:
    """Each round's results from the replies to :func:`round_commands` (an error reply
    is an exception), or the error it met: a script Redis no longer knows is loaded and
    run again, here."""
    answers: list[list[Any] | StoreUnavailable] = []
    at = 0
    for calls in rounds:
        got: list[Any] | StoreUnavailable = []
        for call, result in zip(calls, results[at : at + len(calls)], strict=True):
            if isinstance(result, NoScriptError):
                try:
                    with store_errors():
                        client.script_load(call.script.script)
                    result = StoreRound(client, (call,), confirm).now()[0]
                except StoreUnavailable as exc:
                    result = exc
            elif isinstance(result, Exception):
                result = StoreUnavailable(f"redis: {type(result).__name__}: {result}")
            if isinstance(result, StoreUnavailable):
                got = result
            elif isinstance(got, list):
                got.append(result)
        at += len(calls)
        answers.append(got)
    return answers


class Scripts:
    """Registered scripts for one Redis client (EVALSHA, reloaded on NOSCRIPT)."""

    def __init__(
        self,
        client: redis.Redis,
        events_maxlen: int,
        retention_s: int,
        confirm: ReplicaConfirm | None = None,
    ) -> None:
        self._client = client
        self._maxlen = events_maxlen
        self._retention_s = retention_s
        self._confirm = confirm if confirm is not None and confirm.wanted > 0 else None
        self._scripts: dict[str, Script] = {n: client.register_script(_source(n)) for n in NAMES}

    def call(self, name: str, now_ms: int, *args: Any) -> Any:
        """Run ``name`` with the common arguments first, now, on this thread."""
        [answer] = self.round(now_ms, (name, args)).now()
        return answer

    def round(self, now_ms: int, *calls: tuple[str, tuple[Any, ...]]) -> StoreRound:
        """Scripts to run one after the other in one round trip, each as atomic as when
        called alone (a pipeline, not a transaction). When one of them is CONFIRMED, a
        WAIT for the replicas closes the pipeline: on the same connection as the writes,
        which is the only one WAIT speaks for."""
        confirm = self._confirm
        if confirm is not None and CONFIRMED.isdisjoint(name for name, _ in calls):
            confirm = None
        return StoreRound(
            self._client,
            tuple(
                ScriptCall(self._scripts[name], (), (*self._common(now_ms), *args))
                for name, args in calls
            ),
            confirm,
        )

    def _common(self, now_ms: int) -> tuple[Any, ...]:
        """The arguments every ledger script takes first (prelude.lua)."""
        return schema.PREFIX, now_ms, self._maxlen, self._retention_s
