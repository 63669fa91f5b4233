"""Every Redis key the dispatcher uses, built in one place under one prefix.

The layout (``waapi:`` is ``PREFIX``; ``<n>`` a sending number in E.164, ``<pair>`` is
``<number>:<recipient>``):

====================================  ======  ================================================
key                                   type    what it holds
====================================  ======  ================================================
``job:<id>``                          hash    the job's record (state, envelope, times, ...)
``idem:<key>``                        string  the job id first queued with an idempotency key
``wamid:<wamid>``                     string  the job that sent a Meta message id
``recent``, ``recent:<n>``            zset    job ids by creation (ms): listings
``timers``                            zset    job id -> when a script must look at it (ms)
``dead``                              zset    dead letters: job id -> when it died (ms)
``events``                            stream  one entry per state change, capped
``stats``                             hash    counters (published, ambiguous, reconciled, ...)
``m:<name>``                          hash    metrics kept by the scripts (jobs, now, gw:<lane>)
``queues``                            set     every queue a job was ever published to
``pub:<queue>``                       zset    queued job id -> number of its message
``workers``                           zset    worker identity -> last heartbeat (ms)
``held:<worker>``, ``holds:<worker>``  set     a worker's claimed jobs; its held delivery tags
``recovery:last``, ``recovery:since``  string  the recovery pass's clock (outage guard)
``orphan:<wamid>``                    list    statuses that came before their send's answer
``opair:<pair>``, ``upair:<pair>``    string  a wamid nobody owns; a job held ``unknown``
``win:<pair>``, ``seen:<pair>``,      string  the customer-service window: open; the customer
``closed:<pair>``                             wrote once; the gateway said it is closed
``suppressed``                        hash    recipient -> why bulk jobs skip it (opt-outs)
``rl:<limit>``, ``cool:<name>``       string  a limit's GCRA state; a key's cooldown
``gw:<scope>[:<bucket>|:probe]``      hash    the adaptive throttle's counts and probe slot
``paused:<n>``, ``parked:<n>``        string  a paused number; jobs waiting for its resume
``delivery:<id>``                     string  a webhook delivery already applied
``camp:<id>[:<part>]``, ``campaigns`` hash    a campaign, its audience, held jobs, funnels
``beat``, ``trimmed``, ``swept``      string  when periodic work last ran
====================================  ======  ================================================

The Lua scripts build the same keys from the same prefix in ``lua/prelude.lua``'s ``K``
table; ``tests/test_ledger_schema.py`` checks that both build every key alike. Kombu's
own keys (``unacked``, ``unacked_index``, and each queue's list) are not prefixed.
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
QUEUES = PREFIX + "queues"  # set of every queue a job was published to
SUPPRESSED = PREFIX + "suppressed"  # hash recipient -> reason: bulk jobs skip them
RECOVERY_LAST = PREFIX + "recovery:last"  # when the last recovery pass ran (ms)
RECOVERY_SINCE = PREFIX + "recovery:since"  # since when passes ran without a gap (ms)
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


def publications(queue: str) -> str:
    """Queued jobs of one queue by the number of the message that carries them."""
    return f"{PREFIX}pub:{queue}"


def orphan(wamid: str) -> str:
    """Statuses that came before the wamid's send was recorded, applied when it is."""
    return f"{PREFIX}orphan:{wamid}"


def orphan_pair(number: str, recipient: str) -> str:
    """The last wamid nobody owned, from ``number`` to ``recipient``."""
    return f"{PREFIX}opair:{number}:{recipient}"


def unknown_pair(number: str, recipient: str) -> str:
    """The job held ``unknown`` from ``number`` to ``recipient``, for its webhook."""
    return f"{PREFIX}upair:{number}:{recipient}"


def campaign(campaign_id: str, part: str = "") -> str:
    """A campaign's hash, or one of its parts (``aud``, ``held``, ``f:<run>``)."""
    return f"{PREFIX}camp:{campaign_id}{':' + part if part else ''}"
