"""One job as producers outside Python write it: a send-many line, an HTTP bulk item.

The gateway's own body plus the channel and the job's options
(``dispatcher.job.options``)::

    {"type": "template", "to": "...", "fromPhoneNo": "...", "name": "...", ...,
     "channel": "cloud", "lane": "bulk", "idempotencyKey": "...",
     "notBefore": "2026-11-27T10:00:00Z", "expiresAt": "...", "campaignId": "...",
     "fallbackTemplate": {"name": "...", "language": "en"}}

The combined send (``"type": "send"``) has a ``type`` of its own in the gateway body; in
a job line it is written ``sendType``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from dispatcher.errors import FieldProblem, InvalidRequest
from dispatcher.job.options import JobOptions

CHANNELS = ("cloud", "qr", "contacts")


@dataclass(frozen=True)
class JobLine:
    """A job object split: the channel and type, the gateway body, the options."""

    channel: Literal["cloud", "qr"]
    type: str
    body: dict[str, Any]
    options: JobOptions


def parse_job(item: Any) -> JobLine:
    """Split a job object into options and gateway body; InvalidRequest when malformed."""
    if not isinstance(item, Mapping):
        raise InvalidRequest([FieldProblem("", "a job must be a JSON object")])
    message_type = item.get("type")
    if not isinstance(message_type, str) or not message_type:
        raise InvalidRequest([FieldProblem("type", "is required (text, template, ...)")])
    channel = item.get("channel", "cloud")
    if channel not in CHANNELS:
        raise InvalidRequest([FieldProblem("channel", f"must be one of {', '.join(CHANNELS)}")])
    rest = {k: v for k, v in item.items() if k not in ("type", "channel")}
    options, body = JobOptions.split(rest)
    if message_type == "send" and "sendType" in body:
        body["type"] = body.pop("sendType")
    return JobLine(channel, message_type, body, options)


@dataclass(frozen=True)
class BadLine:
    """A line (or an item of a list) that was refused: where, and why."""

    line: int
    reason: str


def json_lines(lines: Iterable[str]) -> Iterator[tuple[int, Any] | BadLine]:
    """(line number, value) for every non-empty line of a JSONL text, or BadLine."""
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            yield number, json.loads(text)
        except json.JSONDecodeError as exc:
            yield BadLine(number, f"not valid JSON ({exc.msg} at column {exc.colno})")
