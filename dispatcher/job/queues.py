"""Queue names: one queue per (channel, sending number, lane).

A throttled or failing number never blocks another, and the transactional lane of a
number is a queue of its own that workers poll alongside its bulk lane, so an OTP is
not stuck behind a broadcast. Names are stable strings that other services can publish
to by hand: ``waapi.cloud.15550000001.tx``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from config import Settings

Lane = Literal["transactional", "bulk"]
LANES: tuple[Lane, ...] = ("transactional", "bulk")
_LANE_SUFFIX = {"transactional": "tx", "bulk": "bulk"}

MAINTENANCE_QUEUE = "waapi.maintenance"
SESSIONS = "sessions"  # QR jobs that name only a sessionId


def queue_name(channel: str, number: str | None, lane: str) -> str:
    """The queue of a job; ``number`` None means a QR job chosen by ``sessionId``."""
    owner = number.lstrip("+") if number else SESSIONS
    return f"waapi.{channel}.{owner}.{_LANE_SUFFIX[lane]}"


def is_transactional(queue: str) -> bool:
    """Whether ``queue`` is a transactional lane's (the ones workers drain)."""
    return queue.endswith("." + _LANE_SUFFIX["transactional"])


def queues_for(
    settings: Settings,
    numbers: Iterable[str] | None = None,
    lanes: Iterable[str] = LANES,
) -> list[str]:
    """The queues a worker consumes: every configured number (or ``numbers``), each of
    its key's channels, each lane, and the contacts queue of every key that may write
    contacts (at its first number); transactional lanes first."""
    wanted = None if numbers is None else set(numbers)
    names: list[str] = []
    for lane in lanes:
        for key in settings.keys:
            for number in key.numbers:
                if wanted is not None and number not in wanted:
                    continue
                names.extend(queue_name(channel, number, lane) for channel in key.channels)
            if "qr" in key.channels and wanted is None:
                names.append(queue_name("qr", None, lane))
            home = key.contacts_number
            if "contacts.write" in key.scopes and (wanted is None or home in wanted):
                names.append(queue_name("contacts", home, lane))
    return list(dict.fromkeys(names))
