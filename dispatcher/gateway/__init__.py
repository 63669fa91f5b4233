"""The gateway layer: request models, the WAAPI client and its results.

It imports neither celery nor redis (an import-linter contract holds this), so anything
that needs to talk to WAAPI can use it on its own.
"""

from dispatcher.gateway.client import WaapiClient, new_session
from dispatcher.gateway.kinds import (
    CHANNELS,
    CLOUD_KINDS,
    QR_KINDS,
    Channel,
    SendRequest,
    parse_send,
    request_model,
)
from dispatcher.gateway.results import CombinedResult, Contact, Ping, QrSession, SendResult

__all__ = [
    "CHANNELS",
    "CLOUD_KINDS",
    "QR_KINDS",
    "Channel",
    "CombinedResult",
    "Contact",
    "Ping",
    "QrSession",
    "SendRequest",
    "SendResult",
    "WaapiClient",
    "new_session",
    "parse_send",
    "request_model",
]
