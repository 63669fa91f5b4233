"""Faults from the sandbox reach the client as the right errors, classified for retry."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from dispatcher.errors import (
    ConnectFailed,
    ConnectionReset,
    Cooldown,
    Disposition,
    GatewayError,
    RateLimited,
    ReadTimedOut,
    ServerError,
)
from dispatcher.gateway import WaapiClient, new_session
from dispatcher.gateway.cloud import CLOUD_SENDS
from tests.support.processes import SandboxProcess, free_port

# Every test runs on both ways a call is made: through requests (a session that reads
# the environment per call: producers, the CLI) and straight on the urllib3 pool (a
# session settled for its gateway: the workers).
DIRECT = [False]


@pytest.fixture(autouse=True, params=[False, True], ids=["requests", "direct"])
def call_path(request: pytest.FixtureRequest) -> Iterator[None]:
    DIRECT[0] = request.param
    yield
    DIRECT[0] = False


def session_for(base_url: str) -> requests.Session:
    return new_session(4, base_url) if DIRECT[0] else new_session(4)


def client_of(sandbox: SandboxProcess, **kwargs: Any) -> WaapiClient:
    client = sandbox.client(session=session_for(sandbox.base_url), **kwargs)
    assert (client._direct is not None) is DIRECT[0]
    return client


HELLO = CLOUD_SENDS["template"](
    to="+15551230001", from_phone_no="+15550000001", name="hello_world", language="en"
)


def test_5xx_is_a_server_error_to_retry(sandbox: SandboxProcess) -> None:
    sandbox.faults(burst_5xx=1)
    client = client_of(
        sandbox,
    )
    with pytest.raises(ServerError) as caught:
        client.send(HELLO)
    assert caught.value.status == 503
    assert caught.value.disposition is Disposition.RETRY
    assert client.send(HELLO).message_id.startswith("wamid.")  # the burst is over
    assert len(sandbox.sent()) == 1


def test_429_burst_carries_retry_after_and_leaves_the_key_to_the_throttle(
    sandbox: SandboxProcess,
) -> None:
    sandbox.faults(burst_429=2, retry_after_s=7)
    client = client_of(
        sandbox,
    )
    for _ in range(2):
        with pytest.raises(RateLimited) as caught:
            client.send(HELLO)
        assert caught.value.retry_after_s == 7
        assert caught.value.disposition is Disposition.RETRY
        assert caught.value.cooldown is Cooldown.NONE  # no stop-the-world hold
        assert caught.value.overload  # counted by the adaptive throttle
    client.send(HELLO)
    assert len(sandbox.sent()) == 1


@pytest.mark.parametrize(
    ("fault", "sent"),
    [
        ("rate_reset", []),  # reset before processing: nothing was sent
        ("rate_lost_response", ["+15551230001"]),  # processed, then the answer was lost
    ],
)
def test_a_reset_connection_is_ambiguous_whether_or_not_the_gateway_sent_it(
    sandbox: SandboxProcess, fault: str, sent: list[str]
) -> None:
    sandbox.faults(**{fault: 1.0})
    with pytest.raises(ConnectionReset) as caught:
        client_of(sandbox).send(HELLO)
    assert caught.value.disposition is Disposition.AMBIGUOUS
    assert [m["to"] for m in sandbox.sent()] == sent


def test_hang_past_the_read_timeout_is_ambiguous(sandbox: SandboxProcess) -> None:
    sandbox.faults(rate_timeout=1.0, hang_s=3.0)
    client = client_of(sandbox, read_timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(ReadTimedOut) as caught:
        client.send(HELLO)
    assert time.monotonic() - started < 2.5
    assert caught.value.disposition is Disposition.AMBIGUOUS


def test_connection_refused_is_a_connect_failure_to_retry() -> None:
    base_url = f"http://127.0.0.1:{free_port()}/api/v1/external"
    client = WaapiClient(base_url, "waapi_x", None, session=session_for(base_url))
    with pytest.raises(ConnectFailed) as caught:
        client.ping()
    assert caught.value.disposition is Disposition.RETRY
    assert caught.value.status is None


def test_latency_is_added_to_every_call(sandbox: SandboxProcess) -> None:
    sandbox.faults(latency_ms=150)
    client = client_of(
        sandbox,
    )
    client.ping()
    started = time.monotonic()
    client.ping()
    assert time.monotonic() - started >= 0.14


def test_rates_are_drawn_per_call(sandbox: SandboxProcess) -> None:
    sandbox.faults(rate_5xx=0.5)
    client = client_of(
        sandbox,
    )
    outcomes = []
    for _ in range(200):
        try:
            client.ping()
            outcomes.append("ok")
        except ServerError:
            outcomes.append("5xx")
    assert 50 < outcomes.count("5xx") < 150
    assert sandbox.stats()["counters"]["fault_5xx"] == outcomes.count("5xx")


@pytest.fixture
def quota_sandbox() -> Iterator[SandboxProcess]:
    process = SandboxProcess.start("--per-minute", "3")
    yield process
    process.stop()


def test_per_minute_quota_answers_429_with_retry_after(quota_sandbox: SandboxProcess) -> None:
    client = client_of(quota_sandbox)
    for _ in range(3):
        client.send(HELLO)
    with pytest.raises(RateLimited) as caught:
        client.send(HELLO)
    assert caught.value.status == 429
    assert caught.value.retry_after_s is not None
    assert 55 <= caught.value.retry_after_s <= 60
    assert "3 requests per minute" in caught.value.message
    assert len(quota_sandbox.sent()) == 3


# Meta's codes, as the retry table in docs/errors.md reads them.
META_TABLE = [
    (4, "ApiCallLimited", Disposition.RETRY, Cooldown.KEY),
    (80007, "ApiCallLimited", Disposition.RETRY, Cooldown.KEY),
    (130429, "ThroughputLimited", Disposition.RETRY, Cooldown.NUMBER),
    (131056, "PairRateLimited", Disposition.RETRY, Cooldown.RECIPIENT),
    (131048, "SpamLimited", Disposition.RETRY, Cooldown.PAUSE_NUMBER),
    (131049, "MarketingCapped", Disposition.RETRY, Cooldown.NONE),
    (131047, "OutsideWindow", Disposition.PERMANENT, Cooldown.NONE),
    (131026, "Undeliverable", Disposition.PERMANENT, Cooldown.NONE),
    (131050, "OptedOut", Disposition.PERMANENT, Cooldown.NONE),
    (132001, "TemplateNotFound", Disposition.PERMANENT, Cooldown.NONE),
    (131000, "MetaError", Disposition.PERMANENT, Cooldown.NONE),
]


@pytest.mark.parametrize(("code", "name", "disposition", "cooldown"), META_TABLE)
def test_meta_codes_from_the_sandbox_are_classified(
    sandbox: SandboxProcess, code: int, name: str, disposition: Disposition, cooldown: Cooldown
) -> None:
    sandbox.faults(recipient_errors={HELLO.to: code})
    with pytest.raises(GatewayError) as caught:
        client_of(
            sandbox,
        ).send(HELLO)
    error = caught.value
    assert (type(error).__name__, error.code, error.status) == (name, code, 400)
    assert (error.disposition, error.cooldown) == (disposition, cooldown)
    assert sandbox.sent() == []


@pytest.mark.parametrize(("no_proxy", "reaches"), [("", False), ("127.0.0.1", True)])
def test_a_workers_session_reads_the_proxy_settings_once_and_honours_them(
    sandbox: SandboxProcess, monkeypatch: pytest.MonkeyPatch, no_proxy: str, reaches: bool
) -> None:
    """The workers' sessions read HTTP_PROXY/NO_PROXY when made (not on every call): a
    proxy that is down fails the call as never sent, unless NO_PROXY covers the gateway."""
    from dispatcher.gateway import new_session
    from tests.support.stack import make_settings

    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")  # nobody listens
    monkeypatch.setenv("NO_PROXY", no_proxy)
    settings = make_settings("redis://127.0.0.1:1/0", sandbox.base_url)
    session = new_session(2, settings.waapi_base_url)
    monkeypatch.delenv("HTTP_PROXY")  # read once: a later change is not seen
    client = WaapiClient.for_key(settings, settings.keys[0], session)
    if reaches:
        assert client.send(HELLO).message_id.startswith("wamid.")
    else:
        with pytest.raises(ConnectFailed):
            client.send(HELLO)
