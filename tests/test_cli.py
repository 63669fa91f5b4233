"""The ``waapi-dispatch`` command: ping, sandbox, and ``up`` (what ``make run`` runs)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

from dispatcher.cli.supervise import port_open
from tests.support.cli import clean_env as support_clean_env
from tests.support.cli import run_cli
from tests.support.processes import SandboxProcess, free_port
from tests.support.waiting import wait_until


@pytest.fixture
def clean_env() -> dict[str, str]:
    """The environment without any gateway or Redis settings."""
    return support_clean_env()


def ping_env(clean_env: dict[str, str], sandbox: SandboxProcess, secret: str) -> dict[str, str]:
    """The simple setup against the sandbox, with ``secret`` as the key's secret."""
    return clean_env | {
        "WAAPI_BASE_URL": sandbox.base_url,
        "WAAPI_API_KEY": "waapi_sandbox",
        "WAAPI_API_SECRET": secret,
        "WAAPI_FROM_NUMBERS": "+15550000001",
    }


def test_ping_prints_vendor_and_key_name(
    sandbox: SandboxProcess, clean_env: dict[str, str], tmp_path: Path
) -> None:
    result = run_cli("ping", env=ping_env(clean_env, sandbox, "secr_sandbox"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "vendor 6a2a74sandbox" in result.stdout
    assert "key 'Sandbox'" in result.stdout


def test_ping_with_a_wrong_secret_prints_the_gateways_message_in_one_line(
    sandbox: SandboxProcess, clean_env: dict[str, str], tmp_path: Path
) -> None:
    result = run_cli("ping", env=ping_env(clean_env, sandbox, "secr_wrong"), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == "default: HTTP 401: Invalid API secret"
    assert "secr_wrong" not in result.stdout + result.stderr


def test_ping_without_credentials_says_what_to_set(
    clean_env: dict[str, str], tmp_path: Path
) -> None:
    result = run_cli("ping", env=clean_env, cwd=tmp_path)
    assert result.returncode == 1
    assert "WAAPI_API_KEY" in result.stderr


def test_a_wrong_setting_fails_with_the_variable_name(
    clean_env: dict[str, str], tmp_path: Path
) -> None:
    env = {
        **clean_env,
        "WAAPI_API_KEY": "waapi_x",
        "WAAPI_API_SECRET": "secr_hidden",
        "WAAPI_FROM_NUMBERS": "12",
    }
    result = run_cli("ping", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "WAAPI_FROM_NUMBERS: '12' must be an E.164 number" in result.stderr
    assert "secr_hidden" not in result.stderr


def test_sandbox_refuses_a_bad_option(clean_env: dict[str, str], tmp_path: Path) -> None:
    result = run_cli("sandbox", "--rate-5xx", "1.5", env=clean_env, cwd=tmp_path)
    assert result.returncode == 1
    assert "rate_5xx must be at most 1" in result.stderr


def test_sandbox_flags_add_numbers_templates_and_sessions(clean_env: dict[str, str]) -> None:
    process = SandboxProcess.start(
        "--number",
        "+15550000009",
        "--template",
        "otp:en_US:body=1",
        "--qr-session",
        "sess_two:+15550000002",
        "--key",
        "waapi_b:secr_b:+15550000010",
    )
    try:
        from pydantic import SecretStr

        from dispatcher.gateway import WaapiClient, parse_send

        client = process.client()
        sent = client.send(
            parse_send(
                "cloud",
                "template",
                {
                    "to": "+15551230001",
                    "fromPhoneNo": "+15550000009",
                    "name": "otp",
                    "language": "en_US",
                    "components": [
                        {"type": "body", "parameters": [{"type": "text", "text": "123456"}]}
                    ],
                },
            )
        )
        assert sent.message_id.startswith("wamid.")
        assert "sess_two" in {s.session_id for s in client.qr_sessions()}
        other = WaapiClient(process.base_url, "waapi_b", SecretStr("secr_b"))
        assert other.ping().api_key_name == "waapi_b"
    finally:
        process.stop()


class Up:
    """``waapi-dispatch up`` in a subprocess, its output collected line by line."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.sandbox_port, self.redis_port = free_port(), free_port()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dispatcher",
                "up",
                "--sandbox-port",
                str(self.sandbox_port),
                "--redis-port",
                str(self.redis_port),
                "--http-port",
                str(free_port()),
                "--var-dir",
                str(cwd / "var"),
            ],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        assert self.proc.stdout is not None
        stdout = self.proc.stdout
        self.reader = threading.Thread(target=lambda: self.lines.extend(iter(stdout.readline, "")))
        self.reader.start()
        self.wait_for("ready.")
        exports = next(line for line in self.lines if line.strip().startswith("export "))
        self.env = {**env, **dict(kv.split("=", 1) for kv in exports.split()[1:])}

    def wait_for(self, text: str, timeout_s: float = 30) -> str:
        try:
            return str(
                wait_until(
                    lambda: next((line for line in self.lines if text in line), None),
                    timeout_s=timeout_s,
                    interval_s=0.1,
                )
            )
        except AssertionError:
            raise AssertionError(f"no line with {text!r} in:\n{self.output}") from None

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        self.reader.join(10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return self.proc.returncode


def job_state(env: dict[str, str], job_id: str) -> str:
    shown = run_cli("job", job_id, "--json", env=env)
    return str(json.loads(shown.stdout)["state"])


def test_up_starts_redis_and_the_sandbox_and_stops_them_on_sigterm(
    clean_env: dict[str, str], tmp_path: Path
) -> None:
    up = Up(clean_env, tmp_path)
    try:
        assert port_open("127.0.0.1", up.redis_port) and port_open("127.0.0.1", up.sandbox_port)
        assert (tmp_path / "var" / "redis" / "appendonlydir").is_dir()
        # What `up` tells people to try works: a job goes through the running worker.
        sent = run_cli(
            "send",
            "template",
            "--from",
            "+15550000001",
            "--to",
            "+15551230001",
            "--name",
            "hello_world",
            "--language",
            "en",
            env=up.env,
            cwd=tmp_path,
        )
        assert sent.returncode == 0, sent.stderr
        job_id = sent.stdout.strip()
        # Sent by the worker, then delivered and read by the sandbox's signed webhooks.
        wait_until(lambda: job_state(up.env, job_id) == "read", timeout_s=30, interval_s=0.3)
        assert f"job {job_id} read from +15550000001" in up.wait_for(f"job {job_id} read")
    finally:
        code = up.stop()
    output = up.output
    assert code == 0, output
    assert "NO GATEWAY CREDENTIALS SET: using the SANDBOX gateway" in output
    assert "key 'Sandbox' ok" in output
    assert f"redis://127.0.0.1:{up.redis_port}/0" in output
    assert not port_open("127.0.0.1", up.redis_port)
    assert not port_open("127.0.0.1", up.sandbox_port)


def test_up_for_experiments_restarts_a_child_keeps_its_token_and_texts_first_time(
    clean_env: dict[str, str], tmp_path: Path
) -> None:
    """A worker that dies is started again (a line says so) and sending goes on; free
    text to the quickstart's recipient works the first time (the sandbox opened their
    window); each outcome has its line; the token is the same on the next run."""
    up = Up(clean_env, tmp_path)
    try:
        token = up.wait_for("token:").split()[1]
        console = up.wait_for("console:").split()[1]  # the console, signed in with it
        assert "console.js" in requests.get(console, timeout=10).text
        me = requests.get(
            console.replace("/console", "/v1/me"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert me.json()["data"]["scopes"] == ["admin"]
        text = ("send", "text", "--from", "+15550000001", "--to", "+15551230002")
        first = run_cli(*text, "--body", "Your code is 123456", env=up.env).stdout.strip()
        wait_until(lambda: job_state(up.env, first) in ("sent", "delivered", "read"))
        up.wait_for(f"job {first} sent from +15550000001 wamid ")
        children = subprocess.run(
            ["ps", "-o", "pid=,args=", "--ppid", str(up.proc.pid)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        worker = next(int(c.split()[0]) for c in children if "celery" in c and "worker" in c)
        os.kill(worker, signal.SIGKILL)
        up.wait_for("worker exited with -9; restarting it")
        again = run_cli(*text, "--body", "Your code is 654321", env=up.env).stdout.strip()
        wait_until(lambda: job_state(up.env, again) == "read", timeout_s=60, interval_s=0.3)
    finally:
        assert up.stop() == 0, up.output
    assert "stopping everything" not in up.output
    assert (tmp_path / "var" / "dev-token").stat().st_mode & 0o077 == 0  # owner only
    rerun = Up(clean_env, tmp_path)
    try:
        assert rerun.wait_for("token:").split()[1] == token
    finally:
        rerun.stop()


def test_sessions_lists_the_gateways_qr_sessions(
    sandbox: SandboxProcess, clean_env: dict[str, str], tmp_path: Path
) -> None:
    env = ping_env(clean_env, sandbox, "secr_sandbox") | {"WAAPI_CHANNELS": "cloud,qr"}
    result = run_cli("sessions", "--json", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    expected = [s.session_id for s in sandbox.client().qr_sessions()]
    assert expected and [s["sessionId"] for s in json.loads(result.stdout)] == expected
    cloud_only = run_cli("sessions", env=ping_env(clean_env, sandbox, "secr_sandbox"), cwd=tmp_path)
    assert cloud_only.returncode == 1 and "no key with the qr channel" in cloud_only.stderr
