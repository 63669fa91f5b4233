"""Dead letters (list, replay linked to the original) and expiry (never sent late)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from dispatcher.ledger.jobs import Claim
from dispatcher.ops.deadletters import DeadLetters
from dispatcher.producer.api import Dispatcher
from tests.support.cli import clean_env, run_cli
from tests.support.data import BEARER
from tests.support.processes import RedisProcess, SandboxProcess
from tests.support.stack import Stack
from tests.support.waiting import FakeClock, wait_until

FROM = "+15550000001"

pytestmark = pytest.mark.fake_clock  # the clock and dispatcher fixtures


def kill(dispatcher: Dispatcher, to: str, status: int, code: int | None = None) -> str:
    job_id = dispatcher.send_template(to, FROM, "hello_world", "en")
    claim = dispatcher.ledger.claim(job_id)
    assert isinstance(claim, Claim)
    dispatcher.ledger.finish(
        job_id, claim.attempt, "dead", error={"status": status, "code": code, "message": "gave up"}
    )
    return job_id


def test_dead_jobs_are_listed_and_replayed_with_a_link(dispatcher: Dispatcher) -> None:
    first = kill(dispatcher, "+15551230001", 503)
    second = kill(dispatcher, "+15551230002", 400, 130429)
    dead = DeadLetters(dispatcher.ledger)
    assert {r.id for r in dead.list()} == {first, second}
    assert [r.id for r in dead.list(code=130429)] == [second]
    assert [r.id for r in dead.list(code=503)] == [first]
    new_id = dead.replay(first)
    replay = dispatcher.job(new_id)
    assert replay is not None and (replay.state, replay.replay_of, replay.attempts) == (
        "queued",
        first,
        0,
    )
    assert dispatcher.job(first).replayed_as == new_id  # type: ignore[union-attr]
    assert [r.id for r in dead.list()] == [second]
    with pytest.raises(KeyError):
        dead.replay(first)  # not dead any more: replayed


def test_transactional_jobs_expire_after_the_lane_maximum_age(
    dispatcher: Dispatcher, clock: FakeClock
) -> None:
    otp = dispatcher.send_text("+15551230003", FROM, "code 1234")
    bulk = dispatcher.send_template("+15551230004", FROM, "hello_world", "en", lane="bulk")
    expires = dispatcher.ledger.client.hget(f"waapi:job:{otp}", "exp")
    assert int(expires) == int((clock.now + 86_400) * 1000)
    assert dispatcher.ledger.client.hget(f"waapi:job:{bulk}", "exp") == b"0"
    clock.advance(86_401)
    assert dispatcher.ledger.claim(otp) == "expired"
    assert isinstance(dispatcher.ledger.claim(bulk), Claim)


def test_dlq_commands(dispatcher: Dispatcher, redis_url: str, tmp_path: Path) -> None:
    first = kill(dispatcher, "+15551230005", 503)
    second = kill(dispatcher, "+15551230006", 400, 131049)
    env = clean_env(
        REDIS_URL=redis_url,
        WAAPI_API_KEY="waapi_sandbox",
        WAAPI_API_SECRET="secr_sandbox",
        WAAPI_FROM_NUMBERS=FROM,
    )
    listed = json.loads(run_cli("dlq", "list", "--json", env=env, cwd=tmp_path).stdout)
    assert {j["id"] for j in listed} == {first, second}
    assert run_cli("dlq", "replay", env=env, cwd=tmp_path).returncode == 2
    replayed = json.loads(
        run_cli("dlq", "replay", "--code", "131049", "--json", env=env, cwd=tmp_path).stdout
    )["replayed"]
    assert list(replayed) == [second]
    shown = json.loads(run_cli("dlq", "show", first, "--json", env=env, cwd=tmp_path).stdout)
    assert shown["state"] == "dead"
    everything = run_cli("dlq", "replay", "--all", env=env, cwd=tmp_path)
    assert everything.returncode == 0 and "replayed 1" in everything.stdout


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = Path(tmp_path_factory.mktemp("dlq"))
    redis_server = RedisProcess.start(work / "redis")
    sandbox = SandboxProcess.start("--no-window")
    stack = Stack(redis_server, sandbox, work, retry_max_attempts=2)
    stack.url = stack.start_serve()  # type: ignore[attr-defined]
    yield stack
    stack.stop()
    sandbox.stop()
    redis_server.stop()


def test_an_expiring_job_is_never_sent_late_and_dead_ones_replay_over_http(stack: Stack) -> None:
    url = stack.url  # type: ignore[attr-defined]
    with stack.dispatcher() as dispatcher:
        otp = dispatcher.send_text(
            "+15551230007", FROM, "code 99", expires_at=datetime.now(UTC) + timedelta(seconds=1)
        )
        stack.sandbox.faults(rate_5xx=1.0)
        doomed = dispatcher.send_template("+15551230008", FROM, "hello_world", "en")
        time.sleep(1.5)  # the OTP's time runs out before any worker runs
        stack.start_worker(threads=4)
        stack.start_beat()
        wait_until(lambda: dispatcher.job(otp).state == "expired", timeout_s=30)
        wait_until(lambda: dispatcher.job(doomed).state == "dead", timeout_s=30)
        assert all(r["to"] != "+15551230007" for r in stack.sandbox.sent())
        assert requests.get(url + "/v1/dlq", headers=BEARER["crm"], timeout=5).status_code == 403
        listed = requests.get(url + "/v1/dlq", headers=BEARER["ops"], timeout=5).json()["data"]
        assert [j["id"] for j in listed] == [doomed]
        stack.sandbox.faults(rate_5xx=0.0)
        replayed = requests.post(
            url + "/v1/dlq/replay", json={"id": doomed}, headers=BEARER["ops"], timeout=5
        ).json()["data"]["replayed"]
        new_id = replayed[doomed]
        wait_until(lambda: dispatcher.job(new_id).state == "sent", timeout_s=30)
        assert dispatcher.job(new_id).replay_of == doomed  # type: ignore[union-attr]
        bad = requests.post(url + "/v1/dlq/replay", json={}, headers=BEARER["ops"], timeout=5)
        assert bad.status_code == 400
