"""The physical-limit reference: one process, one event loop, ``aiohttp`` with a pooled
connector and ``--in-flight`` sends at once, straight at the gateway (no queue, no
ledger, no limits). What one Python process on this machine gets from the same gateway
is the yardstick every path of ``bench/suite.py`` is reported against.

    python bench/async_reference.py --base-url URL --numbers +1555...,+1555... --messages N
"""

from __future__ import annotations

import argparse
import asyncio

import aiohttp


async def send_all(args: argparse.Namespace) -> None:
    senders = args.numbers.split(",")
    headers = {"X-API-Key": args.key, "X-API-Secret": args.secret}
    url = f"{args.base_url}/whatsapp-api/messages/template"
    connector = aiohttp.TCPConnector(limit=args.in_flight)
    gate = asyncio.Semaphore(args.in_flight)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def one(n: int) -> None:
            body = {
                "to": f"+1571{n:07d}",
                "fromPhoneNo": senders[n % len(senders)],
                "name": "hello_world",
                "language": "en",
            }
            async with gate, session.post(url, json=body) as response:
                response.raise_for_status()
                await response.read()

        await asyncio.gather(*(one(n) for n in range(args.messages)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--numbers", required=True)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--in-flight", type=int, default=200)
    parser.add_argument("--key", default="waapi_sandbox")
    parser.add_argument("--secret", default="secr_sandbox")
    asyncio.run(send_all(parser.parse_args()))


if __name__ == "__main__":
    main()
