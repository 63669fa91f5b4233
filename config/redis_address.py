"""Where Redis is: one server, or a master that a group of Sentinels watches.

``REDIS_URL`` names either one server (``redis://``, ``rediss://``, ``unix://``, as
redis-py reads them) or a Sentinel group::

    sentinel://[[user]:password@]host:port[,host:port...][/db]?master=NAME

The hosts are the Sentinels (port 26379 when left out), ``master`` the name they know the
master by, the user and password those of Redis itself. A password the Sentinels ask for
(``requirepass`` in sentinel.conf) is ``REDIS_SENTINEL_PASSWORD``, kept apart from the
URL so that it is a secret like the others. The broker, the ledger and the limiter follow
the same group: they ask the Sentinels for the master when they connect, and again when
the one they had is gone or has become a replica (READONLY).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote, unquote

SENTINEL_SCHEME = "sentinel://"
DEFAULT_SENTINEL_PORT = 26379


@dataclass(frozen=True, slots=True)
class SentinelGroup:
    """A master as a group of Sentinels knows it (parsed from ``REDIS_URL``)."""

    sentinels: tuple[tuple[str, int], ...]
    master: str
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sentinel_password: str | None = field(default=None, repr=False)

    def kombu_url(self) -> str:
        """The broker URL kombu's Sentinel transport reads: one ``sentinel://`` URL per
        Sentinel, joined by ``;``, each with Redis's credentials and the database."""
        auth = ""
        if self.password is not None:
            auth = f"{quote(self.username or '', safe='')}:{quote(self.password, safe='')}@"
        return ";".join(
            f"{SENTINEL_SCHEME}{auth}{host}:{port}/{self.db}" for host, port in self.sentinels
        )

    def kombu_options(self) -> dict[str, object]:
        """What kombu's Sentinel transport needs beside the URL."""
        options: dict[str, object] = {"master_name": self.master}
        if self.sentinel_password is not None:
            options["sentinel_kwargs"] = {"password": self.sentinel_password}
        return options


def parse_sentinel_url(url: str, sentinel_password: str | None = None) -> SentinelGroup:
    """The Sentinel group ``url`` names; ValueError saying the rule it broke (never
    quoting the URL, which may hold a password)."""
    rest = url.removeprefix(SENTINEL_SCHEME)
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    sentinels = tuple(_host_port(part) for part in hosts.split(",") if part)
    if not sentinels:
        raise ValueError("a sentinel:// URL names at least one Sentinel as host:port")
    masters = parse_qs(query).get("master", [])
    if len(masters) != 1 or not masters[0]:
        raise ValueError("a sentinel:// URL names its master once: ?master=NAME")
    if path and not path.isdigit():
        raise ValueError("a sentinel:// URL's database is a number (/0)")
    return SentinelGroup(
        sentinels=sentinels,
        master=masters[0],
        db=int(path or 0),
        username=username,
        password=password,
        sentinel_password=sentinel_password,
    )


def _host_port(text: str) -> tuple[str, int]:
    host, colon, port = text.rpartition(":")
    if not colon:
        return text, DEFAULT_SENTINEL_PORT
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("each Sentinel of a sentinel:// URL is host:port")
    return host, int(port)
