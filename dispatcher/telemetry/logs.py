"""Log lines: one JSON object per event for machines, a readable line for people.

``LOG_FORMAT=auto`` (the default) writes JSON unless stderr is a terminal. The fields a
log pipeline filters on ride on the record as ``extra`` (``job``, ``campaign``,
``number``, ``to``, ``lane``, ``state``, ``code``); ``to`` is always masked, and every
message goes through the same scrubber as error reports, so a secret that slipped into
an exception's text is still not written.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

from dispatcher.telemetry.scrub import Scrubber

LogFormat = Literal["auto", "json", "text"]
FIELDS = ("job", "campaign", "number", "to", "lane", "state", "code", "key")


def job_fields(envelope: Any, **more: Any) -> dict[str, Any]:
    """The ``extra`` of a log call about one job (anything with the envelope's names)."""
    fields = {
        "job": envelope.id,
        "number": envelope.from_phone_no,
        "to": envelope.to,
        "lane": envelope.lane,
        "campaign": envelope.campaign_id,
    }
    fields.update(more)
    return {k: v for k, v in fields.items() if v is not None}


class _Scrubbing(logging.Formatter):
    def __init__(self, scrubber: Scrubber) -> None:
        super().__init__()
        self.scrubber = scrubber

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is None or value == "":
                continue
            if name == "to":
                value = self.scrubber.number(str(value))
            elif isinstance(value, str):
                value = self.scrubber.text(value)
            found[name] = value
        return found

    def message(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return str(self.scrubber.text(text))


class JsonFormatter(_Scrubbing):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": self.message(record),
            **self.fields(record),
        }
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(_Scrubbing):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        fields = " ".join(f"{k}={v}" for k, v in self.fields(record).items())
        line = f"{stamp} {record.levelname:<7} {record.name}: {self.message(record)}"
        return f"{line}  [{fields}]" if fields else line


def configure_logging(
    scrubber: Scrubber, *, level: str | int = "INFO", log_format: LogFormat = "auto"
) -> None:
    """Send every logger's records to stderr in the chosen format (root handler)."""
    if log_format == "auto":
        log_format = "text" if sys.stderr.isatty() else "json"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(scrubber) if log_format == "json" else TextFormatter(scrubber)
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else level.upper())
