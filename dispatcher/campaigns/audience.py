"""Reading an audience: CSV (a ``to`` column, the rest are variables) or JSONL
(``{"to": ..., <variables>}`` per line). Rows stream: a million rows never sit in memory."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from config.phone import normalize_e164


@dataclass(frozen=True)
class Refused:
    line: int
    reason: str


def rows(stream: TextIO, fmt: str) -> Iterator[tuple[int, dict[str, Any]] | Refused]:
    """(line number, row) for each recipient, or Refused with the reason."""
    source: Iterable[tuple[int, Any]]
    if fmt == "csv":
        reader = csv.DictReader(stream)
        if reader.fieldnames is None or "to" not in reader.fieldnames:
            yield Refused(1, "a CSV audience needs a 'to' column")
            return
        source = ((n + 2, row) for n, row in enumerate(reader))
    else:
        source = _jsonl(stream)
    for line, row in source:
        if isinstance(row, Refused):
            yield row
            continue
        if not isinstance(row, dict) or not isinstance(row.get("to"), str):
            yield Refused(line, "a recipient needs 'to'")
            continue
        try:
            yield line, {**row, "to": normalize_e164(row["to"])}
        except ValueError as exc:
            yield Refused(line, f"to {exc}")


def _jsonl(stream: TextIO) -> Iterator[tuple[int, Any]]:
    for line, text in enumerate(stream, start=1):
        if not text.strip():
            continue
        try:
            yield line, json.loads(text)
        except json.JSONDecodeError as exc:
            yield line, Refused(line, f"not valid JSON ({exc.msg})")
