"""Back off from a failing gateway: a circuit breaker per API key.

Retrying each failed job with jittered backoff keeps one job from hammering the gateway,
but not a whole fleet: during a storm of 5xx, resets and timeouts every other job still
goes out at full speed and a third of them fail too, so calls per message climb with the
storm's length. The breaker watches the outcomes of this process's own calls (memory
only: no Redis round trip per send) and, when too many of the recent ones failed on the
gateway's side, cools the key down in Redis, which stops every worker on every machine
(the limiter reads the cooldown). The cooldown doubles for each trip in a row and the
count of recent trips decays, so a short blip costs half a second and a long outage is
probed ever more gently.

Only the gateway's own trouble counts (5xx, connection refused or reset, read timeouts,
answers that are not the gateway's JSON); a 4xx is a healthy gateway saying no to one
message, and a 429 has its own cooldown from Retry-After.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from dispatcher.errors import GatewayError, ServerError, TransportError, UnexpectedResponse

TROUBLE = (ServerError, TransportError, UnexpectedResponse)


def is_gateway_trouble(error: GatewayError) -> bool:
    """True for failures that say the gateway (not the message) is in trouble."""
    return isinstance(error, TROUBLE)


@dataclass(frozen=True)
class BreakerPolicy:
    """Trip when at least ``min_calls`` outcomes were seen since the last trip and the
    share of failures among the last ``window_calls`` is ``error_ratio`` or more."""

    error_ratio: float = 0.2
    min_calls: int = 20
    window_calls: int = 50
    base_cooldown_s: float = 0.5
    max_cooldown_s: float = 10.0
    memory_s: float = 30.0  # a trip counts toward doubling for this long


class _KeyHealth:
    def __init__(self, window_calls: int) -> None:
        self.outcomes: collections.deque[bool] = collections.deque(maxlen=window_calls)
        self.failures = 0
        self.trips: collections.deque[float] = collections.deque()


class Breaker:
    """Per-key health of this process's gateway calls. Thread-safe."""

    def __init__(self, policy: BreakerPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self.clock = clock
        self._keys: dict[str, _KeyHealth] = {}
        self._lock = threading.Lock()

    def record(self, key: str, failed: bool) -> float | None:
        """Note one call's outcome; returns the cooldown (s) to apply if this trips."""
        policy = self.policy
        with self._lock:
            health = self._keys.get(key)
            if health is None:
                health = self._keys[key] = _KeyHealth(policy.window_calls)
            if len(health.outcomes) == health.outcomes.maxlen and health.outcomes[0]:
                health.failures -= 1
            health.outcomes.append(failed)
            health.failures += failed
            seen = len(health.outcomes)
            if not failed or seen < policy.min_calls:
                return None
            if health.failures < policy.error_ratio * seen:
                return None
            now = self.clock()
            while health.trips and health.trips[0] < now - policy.memory_s:
                health.trips.popleft()
            health.trips.append(now)
            health.outcomes.clear()
            health.failures = 0
            doubling = min(len(health.trips) - 1, 16)
            return float(min(policy.max_cooldown_s, policy.base_cooldown_s * 2.0**doubling))
