"""The Procfile and docker-compose.yml run commands that exist, with the settings that hold."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from dispatcher.cli import main

ROOT = Path(__file__).parent.parent


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))


def procfile() -> dict[str, list[str]]:
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            entries[name.strip()] = shlex.split(command)
    return entries


def check_command(argv: list[str]) -> None:
    """``waapi-dispatch SUBCOMMAND [options]``: the subcommand and its options exist."""
    assert argv[0] == "waapi-dispatch"
    command = main.commands[argv[1]]
    known = {opt for param in command.params for opt in getattr(param, "opts", [])}
    for word in argv[2:]:
        if word.startswith("--"):
            assert word.split("=")[0] in known, f"{argv[1]} has no option {word}"


@pytest.mark.parametrize("name", ["web", "worker", "beat", "sandbox"])
def test_procfile_entries_resolve(name: str) -> None:
    check_command(procfile()[name])


def test_compose_services_run_the_procfile_commands() -> None:
    services = compose()["services"]
    assert {"redis", "web", "worker", "beat", "sandbox"} <= set(services)
    for name in ("web", "worker", "beat", "sandbox"):
        service = services[name]
        check_command(service["command"])
        assert service["build"]["context"] == "."
        assert "waapi-dispatch" in " ".join(procfile()[name])
        assert service["command"][1] == procfile()[name][1]
    assert services["sandbox"]["profiles"] == ["dev"]
    assert "pip install" in services["worker"]["build"]["dockerfile_inline"]


def test_compose_redis_keeps_what_it_is_given() -> None:
    redis = compose()["services"]["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    assert "--appendfsync everysec" in command
    assert "--maxmemory-policy noeviction" in command
    assert redis["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]
    for name in ("web", "worker", "beat"):
        depends = compose()["services"][name]["depends_on"]
        assert depends["redis"]["condition"] == "service_healthy"
