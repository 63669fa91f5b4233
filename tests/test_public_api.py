"""What users may import from ``dispatcher`` is pinned: changing it is a decision."""

import dispatcher

EXPECTED = [
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


def test_exported_members_are_pinned() -> None:
    assert sorted(dispatcher.__all__) == sorted(EXPECTED)
    for name in dispatcher.__all__:
        assert getattr(dispatcher, name) is not None
