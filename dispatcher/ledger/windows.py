"""What the dispatcher knows of customer-service windows and opt-outs.

A window opens when the customer writes (an inbound webhook) and lasts 24 hours. We
know it is closed when we have seen the customer write before and the window has run
out, or when the gateway answered 131047 since the customer last wrote. Otherwise we
do not know, and let the gateway decide. A 131050 puts the recipient on a suppression
list that bulk jobs honour.
"""

from __future__ import annotations

from typing import cast

import redis

from dispatcher.ledger import schema
from dispatcher.ledger.connection import store_errors

WINDOW_S = 24 * 3600
SEEN_S = 90 * 24 * 3600


class Windows:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def customer_wrote(self, number: str, customer: str) -> None:
        with store_errors():
            pipe = self.client.pipeline(transaction=False)
            pipe.set(schema.window(number, customer), 1, ex=WINDOW_S)
            pipe.set(schema.seen(number, customer), 1, ex=SEEN_S)
            pipe.delete(schema.closed(number, customer))
            pipe.execute()

    def gateway_said_closed(self, number: str, customer: str) -> None:
        with store_errors():
            pipe = self.client.pipeline(transaction=False)
            pipe.delete(schema.window(number, customer))
            pipe.set(schema.closed(number, customer), 1, ex=SEEN_S)
            pipe.execute()

    def suppress(self, customer: str, reason: str) -> None:
        with store_errors():
            self.client.hset(schema.SUPPRESSED, customer, reason)

    def unsuppress(self, customer: str) -> bool:
        with store_errors():
            return bool(self.client.hdel(schema.SUPPRESSED, customer))

    def suppressed(self, customer: str) -> str | None:
        with store_errors():
            raw = cast(bytes | None, self.client.hget(schema.SUPPRESSED, customer))
        return raw.decode() if raw else None
