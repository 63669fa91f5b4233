"""The QR sessions the configured keys can send through, asked of the gateway.

Not queued: listing sessions is a read, answered by the gateway at once
(``GET /whatsapp-qr/sessions``); the CLI (``waapi-dispatch sessions``) and the HTTP
service (``GET /v1/whatsapp-qr/sessions``) both ask through here.
"""

from __future__ import annotations

from typing import Any

from config import Settings
from dispatcher.gateway import QrSession, WaapiClient


def qr_sessions(settings: Settings) -> list[QrSession]:
    """Every connected session of every key with the qr channel, once each (keys of one
    vendor see the same sessions). GatewayError when a key's call fails."""
    found: dict[str, QrSession] = {}
    for key in settings.keys:
        if "qr" not in key.channels:
            continue
        client = WaapiClient.for_key(settings, key)
        try:
            for session in client.qr_sessions():
                found.setdefault(session.session_id, session)
        finally:
            client.close()
    return list(found.values())


def as_gateway_item(session: QrSession) -> dict[str, Any]:
    """A session in the gateway's own shape."""
    return {
        "sessionId": session.session_id,
        "sessionName": session.session_name,
        "phoneNumber": session.phone_number,
        "status": session.status,
    }
