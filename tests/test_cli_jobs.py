"""``waapi-dispatch send``, ``send-many``, ``job``, ``jobs``, ``templates`` on a real Redis."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import redis

from tests.support.cli import run_cli

FROM = "+15550000001"


def cli(
    cli_env: dict[str, str], *args: str, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, env=cli_env, stdin=stdin, cwd=cwd)


def test_send_prints_the_job_id_and_job_shows_it(cli_env: dict[str, str], tmp_path: Path) -> None:
    buttons = ["send", "buttons", "--from", FROM, "--to", "+15551230001", "--body-text"]
    buttons += ["Ready?", "--buttons", '[{"id": "y", "title": "Yes"}]']
    buttons += ["--idempotency-key", "order-9"]
    sent = cli(cli_env, *buttons, cwd=tmp_path)
    assert sent.returncode == 0, sent.stderr
    job_id = sent.stdout.strip()
    again = cli(cli_env, *buttons, "--json", cwd=tmp_path)
    assert json.loads(again.stdout) == {"jobId": job_id, "duplicate": True}
    shown = json.loads(cli(cli_env, "job", job_id, "--json", cwd=tmp_path).stdout)
    assert {"id", "state", "wamid", "attempts", "error"} <= set(shown)
    assert (shown["id"], shown["state"], shown["attempts"], shown["type"]) == (
        job_id,
        "queued",
        0,
        "buttons",
    )
    human = cli(cli_env, "job", job_id, cwd=tmp_path).stdout
    assert job_id in human and "queued" in human


def test_send_refuses_bad_input_naming_the_field(cli_env: dict[str, str], tmp_path: Path) -> None:
    result = cli(cli_env, "send", "text", "--from", FROM, "--to", "12", "--body", "", cwd=tmp_path)
    assert result.returncode == 2
    assert "body must not be empty" in result.stderr
    assert "to must be an E.164 number" in result.stderr
    listed = json.loads(cli(cli_env, "jobs", "--json", cwd=tmp_path).stdout)
    assert listed == []


def test_qr_send_by_session(cli_env: dict[str, str], tmp_path: Path) -> None:
    result = cli(
        cli_env,
        "send",
        "location",
        "--channel",
        "qr",
        "--session-id",
        "sess_abc",
        "--to",
        "+15551230001",
        "--latitude",
        "12.5",
        "--longitude",
        "77.25",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(cli(cli_env, "job", result.stdout.strip(), "--json", cwd=tmp_path).stdout)
    assert (shown["channel"], shown["sessionId"]) == ("qr", "sess_abc")


def test_send_many_counts_and_reports_failures_by_line(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    lines = [
        json.dumps(
            {
                "type": "template",
                "to": f"+1555123{n:04d}",
                "fromPhoneNo": FROM,
                "name": "hello_world",
                "language": "en",
            }
        )
        for n in range(5)
    ]
    lines.insert(2, json.dumps({"type": "text", "to": "+15551230001", "fromPhoneNo": FROM}))
    lines.insert(4, "{not json")
    lines.append("")
    lines.append(
        json.dumps(
            {
                "type": "template",
                "to": "+15551230001",
                "fromPhoneNo": FROM,
                "name": "hello_world",
                "language": "en",
                "idempotencyKey": "a",
            }
        )
    )
    lines.append(lines[-1])
    result = cli(cli_env, "send-many", "-", "--json", stdin="\n".join(lines) + "\n", cwd=tmp_path)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert (report["queued"], report["duplicates"]) == (6, 1)
    assert [r["line"] for r in report["refused"]] == [3, 5]
    assert "body is required" in report["refused"][0]["error"]
    assert "not valid JSON" in report["refused"][1]["error"]
    text = cli(cli_env, "send-many", "-", stdin=lines[0] + "\n", cwd=tmp_path)
    assert text.returncode == 0
    assert text.stdout.strip() == "queued 1 job, 0 duplicates, refused 0 lines"  # no key: new
    listed = json.loads(
        cli(
            cli_env,
            "jobs",
            "--state",
            "queued",
            "--number",
            FROM,
            "--limit",
            "3",
            "--json",
            cwd=tmp_path,
        ).stdout
    )
    assert len(listed) == 3 and all(j["state"] == "queued" for j in listed)


def test_templates_prints_what_meta_said(
    cli_env: dict[str, str], redis_client: redis.Redis, tmp_path: Path
) -> None:
    from dispatcher.ledger.templates import Templates

    Templates(redis_client).record("order_shipped", "en_US", status="PAUSED", reason="LOW")
    shown = cli(cli_env, "templates", "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    [template] = json.loads(shown.stdout)
    assert (template["name"], template["status"], template["reason"]) == (
        "order_shipped",
        "PAUSED",
        "LOW",
    )
    plain = cli(cli_env, "templates", cwd=tmp_path).stdout
    assert plain.split() == ["order_shipped", "en_US", "PAUSED", "-", "LOW"]
