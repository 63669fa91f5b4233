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
``ready``                             set     transactional queues that may hold messages
``serves:<digest>``                   set     the transactional queues a worker group serves
``pub:<queue>``                       zset    queued job id -> number of its message
``workers``                           zset    worker identity -> last heartbeat (ms)
``held:<worker>``, ``holds:<worker>``  set     a worker's claimed jobs; its held delivery tags
``recovery:last``, ``recovery:since``  string  the recovery pass's clock (outage guard)
``orphan:<wamid>``                    list    statuses that came before their send's answer
``opair:<pair>``, ``upair:<pair>``    string  a wamid nobody owns; a job held ``unknown``
``win:<pair>``, ``seen:<pair>``,      string  the customer-service window: open; the customer
``closed:<pair>``                             wrote once; the gateway said it is closed
``suppressed``                        hash    recipient -> why bulk jobs skip it (opt-outs)
``templates``                         hash    <name>|<language> -> status and quality
``tplheld:<name>|<language>``         set     jobs held while Meta has the template stopped
``mcap:<recipient>``                  string  marketing caps met lately (MarketingCapped)
``rl:<limit>``, ``cool:<name>``       string  a limit's GCRA state; a key's cooldown
``reach:<portfolio>``                 zset    recipient -> last business-initiated send (ms)
``gw:<scope>``, ``gw:<scope>:probe``  hash    the adaptive throttle's counts per bucket; probe slot
``paused:<n>``, ``parked:<n>``        string  a paused number; jobs waiting for its resume
``delivery:<id>``                     string  a webhook delivery already applied
``camp:<id>[:<part>]``, ``campaigns`` hash    a campaign, its audience, held jobs, funnels
``beat``, ``trimmed``, ``swept``      string  when periodic work last ran
``beat:leader``                       string  the beat that leads (host:pid), with a TTL
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
BEAT_SEEN = PREFIX + "beat"  # when beat's tick last ran (unix s)
BEAT_LEADER = PREFIX + "beat:leader"  # the beat process that sends the schedule (host:pid)
CAMPAIGNS = PREFIX + "campaigns"  # zset campaign id -> created (ms): the listing
CAMPAIGNS_DUE = PREFIX + "campaigns:due"  # zset campaign id -> next run (ms)
CAMPAIGNS_RUNNING = PREFIX + "campaigns:running"  # set of campaigns fanning out a run
QUEUES = PREFIX + "queues"  # set of every queue a job was published to
# Transactional queues the scripts published to since a draining worker found them empty:
# where a worker whose own queue is empty looks for more (take.lua). A hint, not a
# census: a message kombu or another app put back is delivered by Celery's consumer.
READY = PREFIX + "ready"
TEMPLATES = PREFIX + "templates"  # hash <name>|<language> -> what Meta said of it (JSON)
SUPPRESSED = PREFIX + "suppressed"  # hash recipient -> reason: bulk jobs skip them
RECOVERY_LAST = PREFIX + "recovery:last"  # when the last recovery pass ran (ms)
RECOVERY_SINCE = PREFIX + "recovery:since"  # since when passes ran without a gap (ms)
TRIMMED = PREFIX + "trimmed"  # set for a minute after the indexes were trimmed
SWEPT = PREFIX + "swept"  # set for a few seconds after the publication sweep ran
# kombu's Redis transport keeps delivered, unacknowledged messages here (its defaults;
# global_keyprefix is not used): tag -> [message, exchange, routing key] and tag -> time.
KOMBU_UNACKED = "unacked"
KOMBU_UNACKED_INDEX = "unacked_index"


class KeyFamily:
    """Keys ``<PREFIX><name>:<part>[:<part>...]``; called with the parts, in the order the
    table above writes them (``window(number, customer)``)."""

    def __init__(self, name: str, what: str) -> None:
        self.name = name
        self.__doc__ = what

    def __call__(self, *parts: str) -> str:
        return PREFIX + ":".join((self.name, *parts))

    def __repr__(self) -> str:
        return f"KeyFamily({self.name!r})"


# The job, its indexes and the scripts' metrics.
job = KeyFamily("job", "a job's record")
idempotency = KeyFamily("idem", "the job first queued with an idempotency key")
wamid = KeyFamily("wamid", "the job that sent a Meta message id")
recent_for_number = KeyFamily("recent", "a number's jobs by creation (ms)")
metric = KeyFamily("m", "a metrics hash the scripts keep (jobs, now, errors, gw:<lane>, ...)")

# Limits: GCRA, the adaptive throttle, Meta's messaging limit and caps, cooldowns.
rate = KeyFamily("rl", "the GCRA state (theoretical arrival time) of one limit")
throttle = KeyFamily("gw", "the adaptive throttle's counts of key:<name> or num:<n>; :probe")
reach = KeyFamily("reach", "a portfolio's business-initiated recipients in 24 h -> last (ms)")
marketing_capped = KeyFamily("mcap", "Meta's marketing caps a recipient met lately (a count)")
cooldown = KeyFamily("cool", "a key's cooldown (its PTTL is everybody's wait)")

# Workers, their claims and the publications of queues.
held = KeyFamily("held", "jobs a worker process has claimed and not yet settled")
holds = KeyFamily("holds", "delivery tags of the Celery messages a worker process holds")
publications = KeyFamily("pub", "a queue's queued jobs by the number of their message")
served = KeyFamily("serves", "the transactional queues of a worker group (by their digest)")

# A number and a recipient: paused numbers, the customer-service window.
paused = KeyFamily("paused", "set while a number is paused")
parked = KeyFamily("parked", "jobs waiting for a paused number to be resumed")
window = KeyFamily("win", "set while the customer-service window is open (24 h)")
seen = KeyFamily("seen", "the customer wrote to this number once: a lapsed window is closed")
closed = KeyFamily("closed", "the gateway said OutsideWindow: closed till the customer writes")

# Webhooks: applied deliveries, statuses ahead of their send, stopped templates.
delivery = KeyFamily("delivery", "a webhook delivery already applied (X-WAAPI-Delivery)")
orphan = KeyFamily("orphan", "statuses that came before their wamid's send was recorded")
orphan_pair = KeyFamily("opair", "the last wamid nobody owned, from a number to a recipient")
unknown_pair = KeyFamily("upair", "the job held unknown from a number to a recipient")
template_held = KeyFamily("tplheld", "jobs held while Meta stops a template (<name>|<language>)")

# Campaigns.
campaign = KeyFamily("camp", "a campaign's hash, or one of its parts (aud, held, f:<run>)")
