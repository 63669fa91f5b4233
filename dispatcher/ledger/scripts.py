"""The ledger's Lua scripts, loaded once per process and called by name.

Each script is ``prelude.lua`` (key helpers, events, message building) followed by its
own body; KEYS are not used because every script reaches several keys it derives from
the prefix (one Redis, not a cluster). ARGV[1..4] are always prefix, now (ms), the
events stream's cap and the retention of settled jobs (s); a script's own arguments
follow.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import redis
from redis.commands.core import Script

from dispatcher.ledger import schema
from dispatcher.ledger.connection import store_errors

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


@cache
def _source(name: str) -> str:
    folder = resources.files("dispatcher.ledger") / "lua"
    return (folder / "prelude.lua").read_text() + "\n" + (folder / f"{name}.lua").read_text()


class Scripts:
    """Registered scripts for one Redis client (EVALSHA, reloaded on NOSCRIPT)."""

    def __init__(self, client: redis.Redis, events_maxlen: int, retention_s: int) -> None:
        self._client = client
        self._maxlen = events_maxlen
        self._retention_s = retention_s
        self._scripts: dict[str, Script] = {n: client.register_script(_source(n)) for n in NAMES}

    def call(self, name: str, now_ms: int, *args: Any, client: Any = None) -> Any:
        """Run ``name`` with the common arguments first; ``client`` may be a pipeline."""
        with store_errors():
            return self._scripts[name](
                args=[schema.PREFIX, now_ms, self._maxlen, self._retention_s, *args],
                client=client or self._client,
            )
