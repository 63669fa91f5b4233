"""What users may import from ``dispatcher`` is pinned: changing it is a decision."""

import dispatcher

EXPECTED = [
    "CHANNELS",
    "CLOUD_KINDS",
    "QR_KINDS",
    "CombinedResult",
    "Contact",
    "Cooldown",
    "Dispatcher",
    "DispatcherError",
    "Enqueued",
    "Disposition",
    "FieldProblem",
    "GatewayError",
    "InvalidRequest",
    "JobEnvelope",
    "JobRecord",
    "Ping",
    "QrSession",
    "SendResult",
    "StoreUnavailable",
    "WaapiClient",
    "new_session",
    "parse_send",
]


def test_exported_members_are_pinned() -> None:
    assert sorted(dispatcher.__all__) == sorted(EXPECTED)
    for name in dispatcher.__all__:
        assert getattr(dispatcher, name) is not None
