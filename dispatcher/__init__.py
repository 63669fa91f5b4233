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
    NotSettledYet,
    StoreUnavailable,
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
from dispatcher.job.envelope import JobEnvelope
from dispatcher.job.options import JobOptions
from dispatcher.ledger.records import JobRecord
from dispatcher.producer.api import Dispatcher, Enqueued

__all__ = [
    "CHANNELS",
    "CLOUD_KINDS",
    "QR_KINDS",
    "CombinedResult",
    "Contact",
    "Cooldown",
    "Dispatcher",
    "DispatcherError",
    "Disposition",
    "Enqueued",
    "FieldProblem",
    "GatewayError",
    "InvalidRequest",
    "JobEnvelope",
    "JobOptions",
    "JobRecord",
    "NotSettledYet",
    "Ping",
    "QrSession",
    "SendResult",
    "StoreUnavailable",
    "WaapiClient",
    "new_session",
    "parse_send",
]
