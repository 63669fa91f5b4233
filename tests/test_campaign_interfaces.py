"""Campaigns through the CLI and the HTTP service (scope ``campaigns``)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from tests.support.cli import run_cli
from tests.support.data import BEARER
from tests.support.processes import RedisProcess, SandboxProcess
from tests.support.stack import Stack

SPEC = {
    "name": "Winter sale",
    "fromPhoneNos": ["+15550000001"],
    "message": {"type": "template", "body": {"name": "hello_world", "language": "en"}},
    "schedule": {"at": (datetime.now(UTC) + timedelta(days=1)).isoformat()},
}


def cli(cli_env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, env=cli_env, cwd=cwd)


def test_campaign_commands(cli_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "spec.json").write_text(json.dumps(SPEC))
    (tmp_path / "audience.csv").write_text("to,name\n+15551230001,Ann\nnope,Bob\n+15551230002,Cy\n")
    created = cli(
        cli_env,
        "campaign",
        "create",
        "spec.json",
        "--audience",
        "audience.csv",
        "--json",
        cwd=tmp_path,
    )
    assert created.returncode == 0, created.stderr
    result = json.loads(created.stdout)
    assert result["recipients"] == 2
    assert result["refused"][0]["line"] == 3
    campaign_id = result["campaignId"]
    shown = json.loads(cli(cli_env, "campaign", "show", campaign_id, "--json", cwd=tmp_path).stdout)
    assert (shown["state"], shown["recipients"], shown["name"]) == ("scheduled", 2, "Winter sale")
    listed = json.loads(cli(cli_env, "campaign", "list", "--json", cwd=tmp_path).stdout)
    assert [c["id"] for c in listed] == [campaign_id]
    assert cli(cli_env, "campaign", "pause", campaign_id, cwd=tmp_path).returncode == 0
    assert (
        json.loads(cli(cli_env, "campaign", "show", campaign_id, "--json", cwd=tmp_path).stdout)[
            "state"
        ]
        == "paused"
    )
    assert cli(cli_env, "campaign", "resume", campaign_id, cwd=tmp_path).returncode == 0
    assert cli(cli_env, "campaign", "cancel", campaign_id, cwd=tmp_path).returncode == 0
    assert cli(cli_env, "campaign", "cancel", campaign_id, cwd=tmp_path).returncode == 1
    report = cli(cli_env, "campaign", "report", campaign_id, "--csv", cwd=tmp_path).stdout
    table = list(csv.DictReader(io.StringIO(report)))
    assert [r["to"] for r in table] == ["+15551230001", "+15551230002"]
    bad = cli(
        cli_env, "campaign", "create", "audience.csv", "--audience", "audience.csv", cwd=tmp_path
    )
    assert bad.returncode == 2


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = Path(tmp_path_factory.mktemp("camp-http"))
    redis_server = RedisProcess.start(work / "redis")
    sandbox = SandboxProcess.start()
    stack = Stack(redis_server, sandbox, work)
    yield stack.start_serve()
    stack.stop()
    sandbox.stop()
    redis_server.stop()


def test_campaigns_over_http(http: str) -> None:
    body = {"campaign": SPEC, "audience": [{"to": "+15551230001"}, {"to": "x"}]}
    for token, status in (("crm", 403), ("number2", 403)):
        assert (
            requests.post(
                http + "/v1/campaigns", json=body, headers=BEARER[token], timeout=10
            ).status_code
            == status
        )
    assert requests.post(http + "/v1/campaigns", json=body, timeout=10).status_code == 401
    created = requests.post(
        http + "/v1/campaigns", json=body, headers=BEARER["marketing"], timeout=10
    )
    assert created.status_code == 201, created.text
    data = created.json()["data"]
    assert data["recipients"] == 1 and data["refused"][0]["line"] == 2
    campaign_id = data["campaignId"]
    shown = requests.get(
        f"{http}/v1/campaigns/{campaign_id}", headers=BEARER["marketing"], timeout=10
    ).json()["data"]
    assert shown["state"] == "scheduled"
    plan = shown["plan"]  # no messaging limit configured: the numbers' throughput decides
    assert (plan["recipients"], plan["limitedBy"], plan["messagingLimits"]) == (
        1,
        "throughput",
        [],
    )
    assert plan["estimatedFinish"] >= SPEC["schedule"]["at"][:19]  # type: ignore[index]
    assert data["plan"]["estimatedFinish"] == plan["estimatedFinish"]
    paused = requests.post(
        f"{http}/v1/campaigns/{campaign_id}/pause", headers=BEARER["marketing"], timeout=10
    )
    assert paused.json()["data"]["state"] == "paused"
    again = requests.post(
        f"{http}/v1/campaigns/{campaign_id}/pause", headers=BEARER["marketing"], timeout=10
    )
    assert again.status_code == 409
    report = requests.get(
        f"{http}/v1/campaigns/{campaign_id}/report", headers=BEARER["marketing"], timeout=10
    )
    assert report.headers["content-type"].startswith("text/csv")
    assert "+15551230001" in report.text
    csv_body = {"campaign": SPEC, "audienceCsv": "to\n+15551230003\n"}
    assert (
        requests.post(
            http + "/v1/campaigns", json=csv_body, headers=BEARER["ops"], timeout=10
        ).json()["data"]["recipients"]
        == 1
    )
    bad = requests.post(
        http + "/v1/campaigns",
        json={"campaign": {**SPEC, "schedule": {}}, "audience": []},
        headers=BEARER["marketing"],
        timeout=10,
    )
    assert bad.status_code == 400 and "exactly one of at or cron" in bad.json()["error"]
    missing = requests.get(http + "/v1/campaigns/nope", headers=BEARER["marketing"], timeout=10)
    assert missing.status_code == 404


def test_watch_shows_the_progress_of_a_campaign(cli_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "spec.json").write_text(json.dumps(SPEC))
    (tmp_path / "audience.jsonl").write_text('{"to": "+15551230001"}\n')
    created = json.loads(
        cli(
            cli_env,
            "campaign",
            "create",
            "spec.json",
            "--audience",
            "audience.jsonl",
            "--json",
            cwd=tmp_path,
        ).stdout
    )
    assert cli(cli_env, "campaign", "cancel", created["campaignId"], cwd=tmp_path).returncode == 0
    watched = cli(
        cli_env, "campaign", "watch", created["campaignId"], "--interval", "0.1", cwd=tmp_path
    )
    assert watched.returncode == 0, watched.stderr
    assert "Winter sale" in watched.stdout and "cancelled" in watched.stdout
