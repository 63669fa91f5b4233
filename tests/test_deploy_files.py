"""The Procfile and docker-compose.yml run commands that exist, with the settings that hold."""

from __future__ import annotations

import importlib.util
import shlex
from importlib import metadata
from pathlib import Path
from typing import Any

import click
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


def check_options(command: click.Command, words: list[str]) -> None:
    known = {opt for param in command.params for opt in getattr(param, "opts", [])}
    for word in words:
        if word.startswith("--"):
            assert word.split("=")[0] in known, f"{command.name} has no option {word}"


def check_command(argv: list[str]) -> None:
    """The program is an installed entry point and its subcommand and options exist:
    ``waapi-dispatch SUBCOMMAND ...`` or ``celery -A tasks SUBCOMMAND ...``."""
    scripts = {e.name: e for e in metadata.entry_points(group="console_scripts")}
    assert argv[0] in scripts, f"{argv[0]} is not an installed entry point"
    if argv[0] == "waapi-dispatch":
        assert scripts[argv[0]].value == "dispatcher.cli:main"
        check_options(main.commands[argv[1]], argv[2:])
        return
    assert argv[0] == "celery" and argv[1:3] == ["-A", "tasks"], argv
    assert importlib.util.find_spec(argv[2]) is not None
    plugins = {e.name: e for e in metadata.entry_points(group="celery.commands")}
    assert argv[3] in plugins, f"celery has no {argv[3]} command here"
    assert argv[3] == "flower", argv
    from flower.options import options  # Flower's options are tornado options

    for word in argv[4:]:
        assert word.startswith("--") and word[2:].split("=")[0] in options._options, word


# Keys a Compose file may use (the Compose specification), for what this file uses.
SERVICE_KEYS = {
    "build", "image", "command", "entrypoint", "environment", "env_file", "ports",
    "volumes", "depends_on", "healthcheck", "restart", "profiles", "stop_grace_period",
    "deploy", "networks", "user", "working_dir", "labels", "logging", "expose",
}  # fmt: skip


def test_the_compose_file_is_well_formed() -> None:
    """``docker compose config`` cannot run here (no Compose plugin): the structure it
    would check, checked by hand."""
    data = compose()
    assert set(data) <= {"services", "volumes", "networks"} | {
        k for k in data if k.startswith("x-")
    }
    services = data["services"]
    for name, service in services.items():
        assert set(service) <= SERVICE_KEYS, (name, set(service) - SERVICE_KEYS)
        assert "image" in service or "build" in service, name
        assert isinstance(service["command"], list), name
        for other in service.get("depends_on", {}):
            assert other in services, (name, other)
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            assert source.startswith((".", "/")) or source in data["volumes"], volume
        for port in service.get("ports", []):
            host, container = str(port).split(":")
            assert host.isdigit() and container.isdigit(), port
        assert all(isinstance(p, str) for p in service.get("profiles", []))
    assert services["flower"]["profiles"] == ["ops"]
    assert "'.[ops]'" in services["worker"]["build"]["dockerfile_inline"]


@pytest.mark.parametrize("name", ["web", "worker", "beat", "sandbox", "flower"])
def test_procfile_entries_resolve(name: str) -> None:
    check_command(procfile()[name])


def test_compose_services_run_the_procfile_commands() -> None:
    services = compose()["services"]
    assert {"redis", "web", "worker", "beat", "sandbox", "flower"} <= set(services)
    for name in ("web", "worker", "beat", "sandbox", "flower"):
        service = services[name]
        check_command(service["command"])
        assert service["build"]["context"] == "."
        assert service["command"][:4] == procfile()[name][:4]
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


def test_the_sentinel_profile_watches_the_master_with_the_shipped_config() -> None:
    """Two replicas of ``redis`` kept as it is kept, three Sentinels from
    deploy/sentinel.conf (a quorum of two, five seconds to call the master down), and the
    application's REDIS_URL open to the sentinel:// form."""
    services = compose()["services"]
    replicas = [services[f"redis-replica-{n}"] for n in (1, 2)]
    sentinels = [services[f"sentinel-{n}"] for n in (1, 2, 3)]
    for replica in replicas:
        command = " ".join(replica["command"])
        assert "--replicaof redis 6379" in command and "--appendonly yes" in command
    for sentinel in sentinels + replicas:
        assert sentinel["profiles"] == ["sentinel"]
        assert sentinel["depends_on"]["redis"]["condition"] == "service_healthy"
    for sentinel in sentinels:
        assert sentinel["volumes"] == ["./deploy/sentinel.conf:/etc/waapi/sentinel.conf:ro"]
        assert "redis-server /data/sentinel.conf --sentinel" in sentinel["command"][-1]
    conf = (ROOT / "deploy" / "sentinel.conf").read_text().splitlines()
    assert "sentinel monitor waapi redis 6379 2" in conf
    assert "sentinel down-after-milliseconds waapi 5000" in conf
    assert services["worker"]["environment"]["REDIS_URL"] == "${REDIS_URL:-redis://redis:6379/0}"
    from config import load_settings

    url = "sentinel://sentinel-1:26379,sentinel-2:26379,sentinel-3:26379/0?master=waapi"
    group = load_settings(redis_url=url).sentinel
    assert group is not None and group.master == "waapi" and len(group.sentinels) == 3
