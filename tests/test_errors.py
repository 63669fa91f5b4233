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


def test_meta_codes_live_in_the_error_classes_only() -> None:
    """The worker, the webhook receiver and the ledger scripts take Meta's codes from
    errors.py; none is written as a literal anywhere else in the product (the sandbox,
    which plays the gateway, excepted)."""
    import ast
    import re
    from pathlib import Path

    from dispatcher import errors

    codes = {c for cls in errors.MetaError.__subclasses__() for c in cls.codes if c >= 1000}
    codes |= {c for cls in errors.NotSent.__subclasses__() if (c := cls.code) and c >= 1000}
    root = Path(errors.__file__).parent
    found = []
    for path in root.rglob("*.py"):
        if path.name == "errors.py" or "sandbox" in path.parts:
            continue
        tree = ast.parse(path.read_text())
        docstrings = {
            id(body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
            and (body := node.body)
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if not isinstance(node, ast.Constant) or id(node) in docstrings:
                continue
            value = node.value
            if (isinstance(value, int) and not isinstance(value, bool) and value in codes) or (
                isinstance(value, str) and any(re.search(rf"\b{c}\b", value) for c in codes)
            ):
                found.append(f"{path.relative_to(root)}:{node.lineno} {value!r}"[:120])
    for path in root.rglob("*.lua"):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code_part = line.split("--", 1)[0]
            if any(re.search(rf"\b{c}\b", code_part) for c in codes):
                found.append(f"{path.relative_to(root)}:{n} {line.strip()}")
    assert found == []


def test_a_refusal_the_worker_makes_carries_the_code_meta_would_have_sent() -> None:
    from dispatcher import errors

    for refusal, meta in (
        (errors.Suppressed, errors.OptedOut),
        (errors.WindowClosed, errors.OutsideWindow),
    ):
        assert refusal.code in meta.codes
        said = errors.http_error(400, f"(#{refusal.code}) whatever")
        assert type(said) is meta
        assert refusal("why").outcome() == {"code": refusal.code, "message": "why"}
    assert errors.RefusedAtFanOut.code == errors.InvalidRequest.code == 100
    assert errors.NoKeyBound("no key").outcome() == {"message": "no key"}
    assert errors.Suppressed.state == "skipped" and errors.WindowClosed.state == "failed"
