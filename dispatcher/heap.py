"""Python's garbage collector, set for a long-running process of the project (a worker,
the HTTP service, the sandbox gateway): one that allocates a few hundred container
objects per message and keeps a large heap from start-up.

With CPython's defaults (a young-generation collection every 700 net allocations, an
old-generation one every 10 of those), a worker at 2,400 msg/s spent a quarter of its
CPU collecting: 0.42 ms of worker CPU per message against 0.29-0.35 ms with the
settings below, on (c) of ``make bench`` (three workers, 15,000 messages, runs in the
same hour). And each full collection walked the whole start-up heap (Celery, kombu,
pydantic's schemas, aiohttp): 130-270 ms with every send of the process held, three
times in a 15 s run, the tail of the added latency at half load.

The HTTP service gains as much on large requests: 15,000-19,000 jobs/s through
``/v1/messages/bulk`` against 13,100-13,200 with the defaults (``enqueue_rates`` of
``make bench``, two pairs in the same hour).

So, once the process is ready: what start-up built is moved out of the collector's
sight (:func:`gc.freeze`: it lives as long as the process; a cycle in it is never
freed, which costs nothing for modules and settings), and the young generation is
collected after ``GEN0_THRESHOLD`` net allocations. What a message allocates and drops
is freed by reference counting as before; only cycles wait longer, a few megabytes at
most.
"""

from __future__ import annotations

import gc

# Net allocations of container objects between young-generation collections (CPython's
# default is 700). 2,000 kept a third of the cost; 10,000 and 50,000 measured the same.
GEN0_THRESHOLD = 10_000


def settle_heap() -> None:
    """Freeze what start-up allocated and collect the young generation less often. Call
    once the process is ready to work (after imports, settings and connections)."""
    gc.collect()  # what start-up dropped is freed, not frozen
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
