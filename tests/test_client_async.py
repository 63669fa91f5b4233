"""The send loop's gateway calls (WaapiClient.call_async on aiohttp) answer and fail as
the sync client's do: the same message id, the same errors, classified the same."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from dispatcher.errors import (
    ConnectFailed,
    ConnectionReset,
    Disposition,
    ReadTimedOut,
    ServerError,
)
from dispatcher.gateway import WaapiClient
from dispatcher.gateway.client import new_async_session
from dispatcher.gateway.cloud import CLOUD_SENDS
from tests.support.processes import SandboxProcess, free_port

HELLO = CLOUD_SENDS["template"](
    to="+15551230001", from_phone_no="+15550000001", name="hello_world", language="en"
)


def call(client: WaapiClient, read_timeout_s: float = 20.0) -> Any:
    async def once() -> Any:
        async with new_async_session(3.05, read_timeout_s, 4, client.base_url) as http:
            return await client.call_async(http, HELLO)

    return asyncio.run(once())


def test_a_send_answers_its_message_id(sandbox: SandboxProcess) -> None:
    wamid = call(sandbox.client())
    assert isinstance(wamid, str) and wamid.startswith("wamid.")
    assert [m["to"] for m in sandbox.sent()] == ["+15551230001"]


def test_5xx_is_a_server_error_to_retry(sandbox: SandboxProcess) -> None:
    sandbox.faults(burst_5xx=1)
    with pytest.raises(ServerError) as caught:
        call(sandbox.client())
    assert caught.value.status == 503
    assert caught.value.disposition is Disposition.RETRY
    assert sandbox.sent() == []


@pytest.mark.parametrize(
    ("fault", "sent"),
    [("rate_reset", []), ("rate_lost_response", ["+15551230001"])],
)
def test_a_reset_connection_is_ambiguous(
    sandbox: SandboxProcess, fault: str, sent: list[str]
) -> None:
    sandbox.faults(**{fault: 1.0})
    with pytest.raises(ConnectionReset) as caught:
        call(sandbox.client())
    assert caught.value.disposition is Disposition.AMBIGUOUS
    assert [m["to"] for m in sandbox.sent()] == sent


def test_hang_past_the_read_timeout_is_ambiguous(sandbox: SandboxProcess) -> None:
    sandbox.faults(rate_timeout=1.0, hang_s=3.0)
    with pytest.raises(ReadTimedOut) as caught:
        call(sandbox.client(), read_timeout_s=0.3)
    assert caught.value.disposition is Disposition.AMBIGUOUS


def test_connection_refused_is_a_connect_failure_to_retry() -> None:
    client = WaapiClient(f"http://127.0.0.1:{free_port()}/api/v1/external", "waapi_x", None)
    with pytest.raises(ConnectFailed) as caught:
        call(client)
    assert caught.value.disposition is Disposition.RETRY
