"""Schedules, send windows and variables: pure, in the campaign's time zone."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from dispatcher.campaigns import Schedule, SendWindow, render

BERLIN = ZoneInfo("Europe/Berlin")


def test_a_one_off_runs_once() -> None:
    at = datetime(2026, 12, 1, 9, 0, tzinfo=BERLIN)
    schedule = Schedule(at=at, timezone="Europe/Berlin")
    assert schedule.next_run(at - timedelta(seconds=1)) == at
    assert schedule.next_run(at) is None


def test_cron_keeps_local_time_across_daylight_saving() -> None:
    schedule = Schedule(cron="0 9 * * *", timezone="Europe/Berlin")
    runs, moment = [], datetime(2026, 3, 27, 12, 0, tzinfo=UTC)
    for _ in range(4):
        moment = schedule.next_run(moment)  # type: ignore[assignment]
        runs.append(moment)
    assert [r.astimezone(BERLIN).hour for r in runs] == [9, 9, 9, 9]
    # Clocks go forward at 02:00 on 29 March 2026: 09:00 on the 28th is 08:00 UTC, from
    # the 29th on it is 07:00 UTC.
    assert [r.astimezone(UTC).date().day for r in runs] == [28, 29, 30, 31]
    assert [r.astimezone(UTC).hour for r in runs] == [8, 7, 7, 7]
    monday = Schedule(cron="30 9 * * MON", timezone="America/New_York")
    first = monday.next_run(datetime(2026, 11, 27, tzinfo=UTC))
    assert first is not None and first.astimezone(ZoneInfo("America/New_York")).weekday() == 0


def test_send_windows_in_local_time_across_daylight_saving() -> None:
    window = SendWindow(start=time(9), end=time(20))
    before_change = datetime(2026, 3, 28, 7, 30, tzinfo=UTC)  # 08:30 in Berlin (CET)
    after_change = datetime(2026, 3, 30, 7, 30, tzinfo=UTC)  # 09:30 in Berlin (CEST)
    assert not window.contains(before_change, "Europe/Berlin")
    assert window.contains(after_change, "Europe/Berlin")
    night = SendWindow(start=time(22), end=time(6))
    assert night.contains(datetime(2026, 1, 1, 23, tzinfo=UTC), "UTC")
    assert night.contains(datetime(2026, 1, 1, 5, tzinfo=UTC), "UTC")
    assert not night.contains(datetime(2026, 1, 1, 12, tzinfo=UTC), "UTC")


def test_bad_schedules_are_refused() -> None:
    with pytest.raises(ValidationError, match="exactly one of at or cron"):
        Schedule(timezone="UTC")
    with pytest.raises(ValidationError, match="cron expression"):
        Schedule(cron="every monday")
    with pytest.raises(ValidationError, match="IANA time zone"):
        Schedule(cron="0 9 * * *", timezone="Mars/Olympus")


def test_variables_fill_every_string() -> None:
    body = {
        "name": "order_shipped",
        "components": [
            {
                "type": "body",
                "parameters": [
                    {"type": "text", "text": "{{ name }}"},
                    {"type": "text", "text": "AWB-{{awb}}"},
                ],
            }
        ],
    }
    filled = render(body, {"name": "Sam", "awb": 42})
    assert filled["components"][0]["parameters"][1]["text"] == "AWB-42"
    with pytest.raises(KeyError):
        render(body, {"name": "Sam"})
