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
counts a call it holds back, ``finish.lua`` a call made.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

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


@cache
def _source(name: str) -> str:
    return "\n".join((_lua("prelude"), _lua("throttle"), _lua(name)))


@cache
def admit_source() -> str:
    """The admission script (declared KEYS, no prelude; the throttle's counting)."""
    return _lua("throttle") + "\n" + _lua("admit")


# The writes the dispatcher stands on: an enqueue it acknowledges, a claim it sends under.
# With REDIS_CONFIRM_REPLICAS they wait for replicas (replicas.py) before they count.
CONFIRMED = frozenset({"enqueue", "claim", "take"})


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
        """Run ``name`` with the common arguments first."""
        if self._confirm is not None and name in CONFIRMED:
            [answer] = self.call_in_turn(now_ms, (name, args))
            return answer
        with store_errors():
            return self._scripts[name](args=[*self._common(now_ms), *args], client=self._client)

    def call_in_turn(self, now_ms: int, *calls: tuple[str, tuple[Any, ...]]) -> list[Any]:
        """Run several scripts one after the other in one round trip, each as atomic as
        when called alone (a pipeline, not a transaction). EVALSHA straight on the
        pipeline: a redis-py Script on a pipeline asks SCRIPT EXISTS first, a round trip
        of its own. A script Redis no longer knows (restarted, flushed, a new master) is
        loaded and run again: NOSCRIPT means it did not run. When one of
        them is CONFIRMED, a WAIT for the replicas closes the pipeline: on the same
        connection as the writes, which is the only one WAIT speaks for."""
        pipe = self._client.pipeline(transaction=False)
        for name, args in calls:
            pipe.evalsha(self._scripts[name].sha, 0, *self._common(now_ms), *args)
        confirm, needed = self._confirm, 0
        if confirm is not None and not CONFIRMED.isdisjoint(name for name, _ in calls):
            needed = confirm.needed()
            pipe.wait(needed, confirm.timeout_ms)
        else:
            confirm = None
        with store_errors():
            results = pipe.execute(raise_on_error=False)
        answers = []
        for (name, args), result in zip(calls, results[: len(calls)], strict=True):
            if isinstance(result, NoScriptError):
                with store_errors():
                    self._client.script_load(_source(name))
                result = self.call(name, now_ms, *args)
            elif isinstance(result, Exception):
                with store_errors():
                    raise result
            answers.append(result)
        if confirm is not None:
            confirm.check(results[-1], needed)
        return answers

    def _common(self, now_ms: int) -> tuple[Any, ...]:
        """The arguments every ledger script takes first (prelude.lua)."""
        return schema.PREFIX, now_ms, self._maxlen, self._retention_s
