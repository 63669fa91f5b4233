"""The ledger's Lua scripts: one library of Redis functions, loaded once and called by
name (FCALL).

A script sent as EVALSHA runs its whole text at every call: the prelude's key schema and
its ~40 helper functions were built anew each time, about 10 us of Redis's time a call,
two or three calls a message. A library's text runs once, when Redis loads it; a call
runs only the function it names.

Two conventions, each stated at the top of every script:

- **Ledger scripts** (every name in ``NAMES``) share ``prelude.lua`` and ``throttle.lua``
  and begin with the prelude's ``begin(ARGV)``. They declare no KEYS: each reaches keys
  it derives from the job it reads (the job's queue, its campaign, its pair), which
  Redis cannot be told beforehand, so they build them from the prefix with the
  prelude's ``K`` (the key schema, ``schema.py``); this assumes one Redis, not a
  cluster. ARGV[1..4] are always the prefix, now (ms), the events stream's cap and the
  retention of settled jobs (s); the script's own arguments follow from ARGV[5], named
  in its header.
- **The admission** (``admit``: ``admit.lua``, called by ``engine.limiter``) touches only
  keys the caller computed, so it declares them all as KEYS.

``throttle.lua`` (the adaptive throttle's counting) serves both kinds: admission counts a
call it holds back, ``finish.lua`` a call made. ``take.lua`` and ``claim.lua`` call
admit.lua's function too, with the admission the caller planned for the job they claim.

Each function's text is the script file's, run as the body of a function of (keys,
args) that sets the library's ``KEYS`` and ``ARGV`` first, so a script reads as it would
under EVAL. The library's name carries the digest of its text: processes of two versions
of the dispatcher (a rolling deploy) each call their own, and a Redis that does not have
it (restarted without its data, flushed, a new master that never had it) is given it
when a call finds it missing, and the call is made again: a missing function did not
run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, wraps
from importlib import resources
from typing import Any, ParamSpec, TypeVar

import redis

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


@dataclass(frozen=True, slots=True)
class Library:
    """Lua functions Redis keeps loaded (FUNCTION LOAD) under ``name``."""

    name: str
    source: str

    @classmethod
    def of(cls, stem: str, shared: str, functions: Mapping[str, str]) -> Library:
        """A library of ``functions`` (name -> a script's text, reading ``KEYS`` and
        ``ARGV`` as under EVAL) after ``shared`` (the code they share, run once at
        load). Named ``<stem>_<digest of the text>``."""
        parts = ["local KEYS, ARGV  -- the running call's: each function sets them first"]
        parts.append(shared)
        for function, text in functions.items():
            parts.append(
                f"redis.register_function(LIBRARY .. '_{function}', function(keys, args)\n"
                f"KEYS, ARGV = keys, args\n{text}\nend)"
            )
        text = "\n".join(parts)
        name = f"{stem}_{hashlib.sha256(text.encode()).hexdigest()[:16]}"
        return cls(name, f"#!lua name={name}\nlocal LIBRARY = '{name}'\n{text}")

    def function(self, name: str) -> Function:
        return Function(self, f"{self.name}_{name}")

    def load(self, client: redis.Redis) -> None:
        """Give Redis the library (the same name is the same text: replacing is safe)."""
        with store_errors():
            client.function_load(self.source, replace=True)


@dataclass(frozen=True, slots=True)
class Function:
    """One function of a library, as FCALL names it."""

    library: Library
    name: str


def function_missing(error: Exception) -> bool:
    """Whether an error reply says Redis has no such function (so the call did not run)."""
    return str(error).removeprefix("ERR ").startswith("Function not found")


@cache
def ledger_library() -> Library:
    """Every ledger script, and the admission (``admit``)."""
    shared = "\n".join((_lua("prelude"), _lua("throttle"), _lua("admit")))
    functions = {name: f"begin(ARGV)\n{_lua(name)}" for name in NAMES}
    functions["admit"] = "return admit(KEYS, ARGV)"
    return Library.of("waapi", shared, functions)


# The writes the dispatcher stands on: an enqueue it acknowledges, a claim it sends under.
# With REDIS_CONFIRM_REPLICAS they wait for replicas (replicas.py) before they count.
CONFIRMED = frozenset({"enqueue", "claim", "take"})


@dataclass(frozen=True, slots=True)
class FunctionCall:
    """One FCALL: the function, its keys and its arguments."""

    function: Function
    keys: tuple[Any, ...]
    args: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class StoreRound:
    """Functions to run one after the other in one round trip; the answer is their
    results, in order. A value, so that the worker's logic can yield it as a step: run
    at once on a thread (:meth:`now`), or with the rounds of other sends ready at the
    same moment in one pipeline (the send loop, :func:`run_rounds`)."""

    client: redis.Redis
    calls: tuple[FunctionCall, ...]
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
    rounds: Sequence[Sequence[FunctionCall]],
) -> list[list[Any] | StoreUnavailable]:
    """Run ``rounds`` in one pipeline, in order; each round's results, or the error it
    met. ``confirm``: every round is a write the replicas must have (a WAIT closes the
    pipeline)."""
    pipe = client.pipeline(transaction=False)
    for command in round_commands(rounds):
        pipe.fcall(*command[1:])
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


def round_commands(rounds: Sequence[Sequence[FunctionCall]]) -> list[tuple[Any, ...]]:
    """The FCALL of every call of ``rounds``, in order."""
    return [
        ("FCALL", call.function.name, len(call.keys), *call.keys, *call.args)
        for calls in rounds
        for call in calls
    ]


def round_answers(
    client: redis.Redis,
    confirm: ReplicaConfirm | None,
    rounds: Sequence[Sequence[FunctionCall]],
    results: Sequence[Any],
) -> list[list[Any] | StoreUnavailable]:
    """Each round's results from the replies to :func:`round_commands` (an error reply
    is an exception), or the error it met: a call whose library Redis does not have is
    made again here, after the library is loaded (once)."""
    answers: list[list[Any] | StoreUnavailable] = []
    loaded: set[str] = set()
    at = 0
    for calls in rounds:
        got: list[Any] | StoreUnavailable = []
        for call, result in zip(calls, results[at : at + len(calls)], strict=True):
            if isinstance(result, Exception) and function_missing(result):
                try:
                    library = call.function.library
                    if library.name not in loaded:
                        library.load(client)
                        loaded.add(library.name)
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
    """The ledger's functions, called through one Redis client."""

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
        library = ledger_library()
        self._functions = {name: library.function(name) for name in NAMES}

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
                FunctionCall(self._functions[name], (), (*self._common(now_ms), *args))
                for name, args in calls
            ),
            confirm,
        )

    def _common(self, now_ms: int) -> tuple[Any, ...]:
        """The arguments every ledger script takes first (prelude.lua)."""
        return schema.PREFIX, now_ms, self._maxlen, self._retention_s
