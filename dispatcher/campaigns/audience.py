"""Reading an audience: CSV (a ``to`` column, the rest are variables) or JSONL
(``{"to": ..., <variables>}`` per line). Rows stream: a million rows never sit in memory."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from config.phone import normalize_e164
from dispatcher.job.line import BadLine, json_lines

Refused = BadLine  # a recipient row refused, by line


def rows(stream: TextIO, fmt: str) -> Iterator[tuple[int, dict[str, Any]] | Refused]:
    """(line number, row) for each recipient, or Refused with the reason."""
    source: Iterable[tuple[int, Any] | Refused]
    if fmt == "csv":
        reader = csv.DictReader(stream)
        if reader.fieldnames is None or "to" not in reader.fieldnames:
            yield Refused(1, "a CSV audience needs a 'to' column")
            return
        source = ((n + 2, row) for n, row in enumerate(reader))
    else:
        source = json_lines(stream)
    yield from recipients(source)


def recipients(
    source: Iterable[tuple[int, Any] | Refused],
) -> Iterator[tuple[int, dict[str, Any]] | Refused]:
    """Each numbered row checked as a recipient (a ``to`` in E.164), or Refused."""
    for item in source:
        if isinstance(item, Refused):
            yield item
            continue
        line, row = item
        if not isinstance(row, dict) or not isinstance(row.get("to"), str):
            yield Refused(line, "a recipient needs 'to'")
            continue
        try:
            yield line, {**row, "to": normalize_e164(row["to"])}
        except ValueError as exc:
            yield Refused(line, f"to {exc}")
