"""The error tree: one root, classification per the retry table, Retry-After parsing."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatcher import errors
from dispatcher.errors import Cooldown, DispatcherError, Disposition, http_error, parse_meta_code
from dispatcher.gateway.headers import parse_retry_after


def test_every_error_shares_one_root() -> None:
    classes = [
        c
        for _, c in inspect.getmembers(errors, inspect.isclass)
        if issubclass(c, Exception) and c.__module__ == errors.__name__
    ]
    assert len(classes) > 20
    assert all(issubclass(c, DispatcherError) for c in classes)


@pytest.mark.parametrize(
    ("status", "message", "name", "disposition", "cooldown"),
    [
        (400, "bodyText is required", "BadRequest", Disposition.PERMANENT, Cooldown.NONE),
        (400, "(#999999) Something new", "MetaError", Disposition.PERMANENT, Cooldown.NONE),
        (400, "(#130429) throughput", "ThroughputLimited", Disposition.RETRY, Cooldown.NUMBER),
        (401, "Invalid API secret", "Unauthorized", Disposition.PERMANENT, Cooldown.NONE),
        (403, "scope", "Forbidden", Disposition.PERMANENT, Cooldown.NONE),
        (404, "Contact not found", "NotFound", Disposition.PERMANENT, Cooldown.NONE),
        (409, "duplicate", "Conflict", Disposition.PERMANENT, Cooldown.NONE),
        (418, "teapot", "GatewayHTTPError", Disposition.PERMANENT, Cooldown.NONE),
        (429, "slow down", "RateLimited", Disposition.RETRY, Cooldown.NONE),
        (429, "(#80007) WABA limit", "ApiCallLimited", Disposition.RETRY, Cooldown.KEY),
        (500, "oops", "ServerError", Disposition.RETRY, Cooldown.NONE),
        (502, "<html>bad gateway</html>", "ServerError", Disposition.RETRY, Cooldown.NONE),
        (503, "(#131026) undeliverable", "Undeliverable", Disposition.PERMANENT, Cooldown.NONE),
    ],
)
def test_http_errors_are_classified_by_meta_code_then_status(
    status: int, message: str, name: str, disposition: Disposition, cooldown: Cooldown
) -> None:
    error = http_error(status, message, retry_after_s=3.0)
    assert type(error).__name__ == name
    assert (error.disposition, error.cooldown, error.status) == (disposition, cooldown, status)
    assert error.retryable is (disposition is Disposition.RETRY)
    assert error.retry_after_s == 3.0
    assert error.message == message


def test_transport_errors_say_whether_the_request_left() -> None:
    assert errors.ConnectFailed("x").disposition is Disposition.RETRY
    assert errors.ReadTimedOut("x").disposition is Disposition.AMBIGUOUS
    assert errors.ConnectionReset("x").disposition is Disposition.AMBIGUOUS
    assert errors.UnexpectedResponse("x").disposition is Disposition.AMBIGUOUS


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("(#131047) Re-engagement", 131047),
        ("  (#4) limit", 4),
        ("no code (#5)", None),
        ("(#abc) x", None),
        ("", None),
    ],
)
def test_meta_code_is_read_from_the_message_start(message: str, code: int | None) -> None:
    assert parse_meta_code(message) == code


NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("  ", None),
        ("7", 7.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("-1", None),
        ("nan", None),
        ("inf", None),
        ("soon", None),
        (format_datetime(NOW + timedelta(seconds=90), usegmt=True), 90.0),
        (format_datetime(NOW - timedelta(seconds=90), usegmt=True), 0.0),
    ],
)
def test_retry_after_in_seconds_or_http_date(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, NOW.timestamp()) == expected


@given(st.integers(0, 10**7))
def test_retry_after_integer_seconds(seconds: int) -> None:
    assert parse_retry_after(str(seconds), 0.0) == seconds
