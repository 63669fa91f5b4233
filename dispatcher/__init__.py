"""waapi-dispatcher: send WhatsApp messages through the WAAPI External API.

What users may import from here is the list in ``__all__``; a test pins it.
"""

from dispatcher.errors import (
    Cooldown,
    DispatcherError,
    Disposition,
    FieldProblem,
    GatewayError,
    InvalidRequest,
)
from dispatcher.gateway import (
    CHANNELS,
    CLOUD_KINDS,
    QR_KINDS,
    CombinedResult,
    Contact,
    Ping,
    QrSession,
    SendResult,
    WaapiClient,
    new_session,
    parse_send,
)

__all__ = [
    "CHANNELS",
    "CLOUD_KINDS",
    "QR_KINDS",
    "CombinedResult",
    "Contact",
    "Cooldown",
    "DispatcherError",
    "Disposition",
    "FieldProblem",
    "GatewayError",
    "InvalidRequest",
    "Ping",
    "QrSession",
    "SendResult",
    "WaapiClient",
    "new_session",
    "parse_send",
]
