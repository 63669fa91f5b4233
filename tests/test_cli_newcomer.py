"""What a newcomer meets on the command line and in the Python API: read-only commands
without gateway credentials, answers that say when there is nothing, counts in the right
number, a watch that ends on Ctrl-C, a campaign watch that reads at 80 columns, and a
``wait`` that says when it ran out of time."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dispatcher import Dispatcher, NotSettledYet
from tests.support.cli import clean_env, run_cli
from tests.test_campaign_interfaces import SPEC


def test_read_only_commands_need_redis_not_gateway_credentials(redis_url: str) -> None:
    """Someone on call with only REDIS_URL can look; queueing still asks for a key."""
    env = clean_env(REDIS_URL=redis_url)
    for argv, says in (
        (("jobs",), "no jobs"),
        (("jobs", "--state", "dead"), "no jobs dead"),
        (("campaign", "list"), "no campaigns"),
        (("dlq", "list"), "no dead letters"),
        (("dlq", "list", "--code", "131026"), "no dead letters with code 131026"),
    ):
        done = run_cli(*argv, env=env)
        assert (done.returncode, done.stdout.strip()) == (0, says), (argv, done.stderr)
    status = run_cli("status", "--json", "--sample-s", "0.2", env=env)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["numbers"] == []
    shown = run_cli("job", "nope", env=env)
    assert shown.returncode == 1 and "no job nope" in shown.stderr
    send = run_cli(
        "send", "text", "--to", "+15551230001", "--body", "hi", "--from", "+15550000001", env=env
    )
    assert send.returncode == 1 and "no gateway credentials" in send.stderr


def test_cancel_says_cancelled_and_a_cancelled_campaign_has_no_next_run(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "spec.json").write_text(json.dumps(SPEC))
    (tmp_path / "one.csv").write_text("to\n+15551230001\n")
    created = run_cli(
        "campaign", "create", "spec.json", "--audience", "one.csv", env=cli_env, cwd=tmp_path
    )
    assert created.returncode == 0, created.stderr
    assert ": 1 recipient, first run " in created.stdout  # one, not "1 recipients"
    campaign_id = created.stdout.split(":", 1)[0]
    before = run_cli("campaign", "show", campaign_id, env=cli_env)
    assert "next run   none" not in before.stdout  # scheduled for tomorrow
    cancelled = run_cli("campaign", "cancel", campaign_id, env=cli_env)
    assert cancelled.stdout.strip() == f"{campaign_id} cancelled"
    shown = run_cli("campaign", "show", campaign_id, "--json", env=cli_env)
    assert json.loads(shown.stdout)["nextRun"] is None
    assert "next run   none" in run_cli("campaign", "show", campaign_id, env=cli_env).stdout
    again = run_cli("campaign", "cancel", campaign_id, env=cli_env)
    assert again.returncode == 1 and f"{campaign_id}: nothing to cancel" in again.stdout


def test_counts_are_singular_and_plural(cli_env: dict[str, str]) -> None:
    one = {"type": "text", "to": "+15551230001", "fromPhoneNo": "+15550000001", "body": "hi"}
    one["idempotencyKey"] = "once"  # queued the second time too: a duplicate
    done = run_cli("send-many", "-", env=cli_env, stdin=json.dumps(one) + "\n")
    assert done.stdout.strip() == "queued 1 job, 0 duplicates, refused 0 lines", done.stderr
    bad = json.dumps({**one, "to": "nope"})
    done = run_cli("send-many", "-", env=cli_env, stdin=f"{json.dumps(one)}\n{bad}\n{bad}\n")
    assert done.stdout.strip() == "queued 0 jobs, 1 duplicate, refused 2 lines"


def test_status_watch_shows_it_again_until_ctrl_c(cli_env: dict[str, str]) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "dispatcher", "status", "--watch", "--json", "--sample-s", "0.3"],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    reports = [json.loads(proc.stdout.readline()) for _ in range(3)]
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert all(len(r["numbers"]) == 2 for r in reports)


def test_campaign_watch_reads_at_80_columns(cli_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "spec.json").write_text(json.dumps({**SPEC, "name": "A rather long name " * 3}))
    audience = "to\n" + "".join(f"+1555123{n:04d}\n" for n in range(40))
    (tmp_path / "audience.csv").write_text(audience)
    created = run_cli(
        "campaign", "create", "spec.json", "--audience", "audience.csv", env=cli_env, cwd=tmp_path
    )
    campaign_id = created.stdout.split(":", 1)[0]
    run_cli("campaign", "cancel", campaign_id, env=cli_env)
    watched = run_cli("campaign", "watch", campaign_id, env={**cli_env, "COLUMNS": "80"})
    assert watched.returncode == 0, watched.stderr
    lines = watched.stdout.splitlines()
    assert lines and max(len(line) for line in lines) <= 80, watched.stdout
    assert any("0/40" in line for line in lines)
    assert any(line.startswith("cancelled") for line in lines), watched.stdout


def test_wait_says_when_it_runs_out_of_time(dispatcher: Dispatcher) -> None:
    """No worker runs here: the job stays queued, and wait raises instead of handing
    back an unfinished record as if it were the answer."""
    job_id = dispatcher.send_text("+15551230001", "+15550000001", "hi")
    started = time.monotonic()
    with pytest.raises(NotSettledYet, match=rf"job {job_id} is still queued after 0.3 s") as ran:
        dispatcher.wait(job_id, timeout_s=0.3)
    assert 0.3 <= time.monotonic() - started < 2
    assert isinstance(ran.value, TimeoutError)
    assert ran.value.record is not None and ran.value.record.state == "queued"
    with pytest.raises(NotSettledYet, match="job nope is not recorded"):
        dispatcher.wait("nope", timeout_s=0.1)
    assert dispatcher.wait(job_id, until={"queued"}).state == "queued"
