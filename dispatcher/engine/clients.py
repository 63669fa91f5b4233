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
        # (number, channel) -> the client of the first key that binds it on that channel
        self._by_number: dict[tuple[str, str], WaapiClient] = {}
        self._sessions: list[requests.Session] = []
        self._qr: WaapiClient | None = None
        for key in settings.keys:
            session = new_session(pool_size, settings.waapi_base_url)
            self._sessions.append(session)
            client = WaapiClient.for_key(settings, key, session)
            for number in key.numbers:
                for channel in key.channels:
                    self._by_number.setdefault((number, channel), client)
            # Contact writes travel through the queue of the key's first number.
            self._by_number.setdefault((key.numbers[0], "contacts"), client)
            if "qr" in key.channels and self._qr is None:
                self._qr = client
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
