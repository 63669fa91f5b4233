"""What users may import from ``dispatcher`` is pinned: changing it is a decision."""

import dispatcher

# One text, not a second copy of __all__: a change to the API is a change here too.
NAMES = """
    CHANNELS CLOUD_KINDS QR_KINDS CombinedResult Contact Cooldown Dispatcher DispatcherError
    Disposition Enqueued FieldProblem GatewayError InvalidRequest JobEnvelope JobOptions
    JobRecord NotSettledYet Ping QrSession SendResult StoreUnavailable WaapiClient new_session
    parse_send
"""
EXPECTED = NAMES.split()


def test_exported_members_are_pinned() -> None:
    assert sorted(dispatcher.__all__) == sorted(EXPECTED)
    for name in dispatcher.__all__:
        assert getattr(dispatcher, name) is not None
