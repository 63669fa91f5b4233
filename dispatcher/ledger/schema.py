"""Every Redis key the dispatcher uses, built in one place under one prefix.

The Lua scripts build the same keys from the same prefix (``PREFIX`` is passed to them),
so a change here is a change everywhere.
"""

from __future__ import annotations

PREFIX = "waapi:"

EVENTS = PREFIX + "events"  # stream: one entry per state change, capped
TIMERS = PREFIX + "timers"  # zset job id -> when the sweeper must look at it (ms)
RECENT = PREFIX + "recent"  # zset job id -> created (ms): listing, newest first
STATS = PREFIX + "stats"  # hash of counters (ambiguous sends, republished, ...)
WORKERS = PREFIX + "workers"  # zset worker name -> last seen (ms)
DEAD = PREFIX + "dead"  # zset job id -> when it died (ms): the dead letters
BEAT_SEEN = PREFIX + "beat"  # when beat's once-a-minute task last ran (unix s)
CAMPAIGNS = PREFIX + "campaigns"  # zset campaign id -> created (ms): the listing
CAMPAIGNS_DUE = PREFIX + "campaigns:due"  # zset campaign id -> next run (ms)
CAMPAIGNS_RUNNING = PREFIX + "campaigns:running"  # set of campaigns fanning out a run
TRIMMED = PREFIX + "trimmed"  # set for a minute after the indexes were trimmed
SWEPT = PREFIX + "swept"  # set for a few seconds after the publication sweep ran
# kombu's Redis transport keeps delivered, unacknowledged messages here (its defaults;
# global_keyprefix is not used): tag -> [message, exchange, routing key] and tag -> time.
KOMBU_UNACKED = "unacked"
KOMBU_UNACKED_INDEX = "unacked_index"


def metric(name: str) -> str:
    """A metrics hash the ledger scripts keep (``m:jobs``, ``m:gw:<lane>``, ...)."""
    return f"{PREFIX}m:{name}"


def job(job_id: str) -> str:
    return f"{PREFIX}job:{job_id}"


def idempotency(key: str) -> str:
    return f"{PREFIX}idem:{key}"


def wamid(message_id: str) -> str:
    return f"{PREFIX}wamid:{message_id}"


def recent_for_number(number: str) -> str:
    return f"{PREFIX}recent:{number}"


def rate(name: str) -> str:
    """The GCRA state (theoretical arrival time) of one limit."""
    return f"{PREFIX}rl:{name}"


def throttle(scope: str) -> str:
    """The adaptive throttle's counts for a scope (``key:<name>``, ``num:<number>``); its
    buckets are ``<this>:<bucket>`` hashes and ``<this>:probe`` is its probe slot."""
    return f"{PREFIX}gw:{scope}"


def cooldown(name: str) -> str:
    return f"{PREFIX}cool:{name}"


def held(worker: str) -> str:
    """Jobs a worker process has claimed and not yet settled (claims name their holder)."""
    return f"{PREFIX}held:{worker}"


def holds(worker: str) -> str:
    """Delivery tags of the Celery messages a worker process holds (its heartbeat)."""
    return f"{PREFIX}holds:{worker}"


def paused(number: str) -> str:
    return f"{PREFIX}paused:{number}"


def parked(number: str) -> str:
    """Jobs waiting for a paused number to be resumed."""
    return f"{PREFIX}parked:{number}"


SUPPRESSED = PREFIX + "suppressed"  # hash recipient -> reason: bulk jobs skip them


def window(number: str, customer: str) -> str:
    """Set while the customer-service window is open (an inbound message, 24 h)."""
    return f"{PREFIX}win:{number}:{customer}"


def seen(number: str, customer: str) -> str:
    """The customer wrote to this number at some time: an expired window is known closed."""
    return f"{PREFIX}seen:{number}:{customer}"


def closed(number: str, customer: str) -> str:
    """The gateway said 131047 for this pair: closed until the customer writes."""
    return f"{PREFIX}closed:{number}:{customer}"


def delivery(delivery_id: str) -> str:
    """A webhook delivery already processed (``X-WAAPI-Delivery``)."""
    return f"{PREFIX}delivery:{delivery_id}"


def campaign(campaign_id: str, part: str = "") -> str:
    """A campaign's hash, or one of its parts (``aud``, ``held``, ``f:<run>``)."""
    return f"{PREFIX}camp:{campaign_id}{':' + part if part else ''}"
