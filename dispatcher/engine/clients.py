"""One gateway client per configured API key, picked by the job's sending number."""

from __future__ import annotations

import requests

from config import Settings
from dispatcher.gateway import WaapiClient, new_session
from dispatcher.job.envelope import JobEnvelope


class Clients:
    """One WaapiClient per configured key; each key's session pools ``pool_size``
    connections, so every worker thread can hold one without churning TLS."""

    def __init__(self, settings: Settings, pool_size: int) -> None:
        self._sessions: list[requests.Session] = []
        self._qr: WaapiClient | None = None
        by_key: dict[str, WaapiClient] = {}
        for key in settings.keys:
            session = new_session(pool_size, settings.waapi_base_url)
            self._sessions.append(session)
            by_key[key.name] = WaapiClient.for_key(settings, key, session)
            if "qr" in key.channels and self._qr is None:
                self._qr = by_key[key.name]
        # (number, channel) -> the client of the key that sends it (Settings.senders)
        self._by_number = {route: by_key[key.name] for route, key in settings.senders().items()}
        self._single = len(settings.keys) == 1

    def for_envelope(self, envelope: JobEnvelope) -> WaapiClient:
        """The client of the key bound to the job's number (KeyError if none)."""
        if envelope.from_phone_no is not None:
            return self._by_number[(envelope.from_phone_no, envelope.channel)]
        if self._qr is not None:
            return self._qr
        raise KeyError("no key with the qr channel for a sessionId-only job")

    def close(self) -> None:
        for session in self._sessions:
            session.close()
