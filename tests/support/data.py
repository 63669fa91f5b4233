"""The tests' fixed data: the sandbox demo key as the dispatcher sees it, producer
tokens, a campaign."""

from __future__ import annotations

from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]  # the repository: tests/support/data.py
DATA = REPO / "tests" / "data"


# The sandbox's demo key as the dispatcher is configured with it in tests.
SANDBOX_KEYS = [
    {
        "name": "sandbox",
        "key": "waapi_sandbox",
        "secret": "secr_sandbox",
        "numbers": ["+15550000001", "+15550000002"],
        "channels": ["cloud", "qr"],
        "webhook_verify_token": "verify_sandbox",
    }
]


# Producer tokens of the HTTP service in tests.
TOKENS = [
    {"name": "crm", "token": "tok_crm_0123456789abcdef", "scopes": ["send", "read"]},
    {"name": "reader", "token": "tok_reader_0123456789ab", "scopes": ["read"]},
    {
        "name": "number2",
        "token": "tok_number2_0123456789",
        "scopes": ["send", "read"],
        "numbers": ["+15550000002"],
    },
    {"name": "ops", "token": "tok_admin_0123456789abcd", "scopes": ["admin"]},
    {"name": "sender", "token": "tok_sender_0123456789ab", "scopes": ["send"]},
    {"name": "marketing", "token": "tok_marketing_01234567", "scopes": ["campaigns"]},
    {"name": "prometheus", "token": "tok_prometheus_0123456", "scopes": ["metrics"]},
]


BEARER = {t["name"]: {"Authorization": f"Bearer {t['token']}"} for t in TOKENS}


KEYS = {
    "sandbox": ("waapi_sandbox", "secr_sandbox"),
    "readonly": ("waapi_readonly", "secr_readonly"),
    "cloudonly": ("waapi_cloudonly", "secr_cloudonly"),
    "nocontacts": ("waapi_nocontacts", "secr_nocontacts"),
}


def campaign_spec(**fields: Any) -> Any:
    """A campaign of ``order_shipped`` with two variables per recipient (``name``,
    ``awb``), on both demo numbers, due now unless ``schedule`` says otherwise."""
    from datetime import UTC, datetime

    from dispatcher.campaigns import CampaignSpec

    parameters = [{"type": "text", "text": "{{name}}"}, {"type": "text", "text": "{{awb}}"}]
    return CampaignSpec.model_validate(
        {
            "name": "promo",
            "fromPhoneNos": ["+15550000001", "+15550000002"],
            "message": {
                "type": "template",
                "body": {
                    "name": "order_shipped",
                    "language": "en",
                    "components": [{"type": "body", "parameters": parameters}],
                },
            },
            "schedule": {"at": datetime.now(UTC).isoformat()},
            **fields,
        }
    )


def hello_body(n: int, from_phone_no: str = "+15550000001") -> dict[str, Any]:
    """The gateway body of ``hello_world`` to the ``n``-th test recipient."""
    to = f"+1555{n:07d}"
    return {"to": to, "fromPhoneNo": from_phone_no, "name": "hello_world", "language": "en"}


def hello_line(n: int, from_phone_no: str = "+15550000001") -> dict[str, Any]:
    """A job line sending ``hello_world`` to the ``n``-th test recipient."""
    return {"type": "template", **hello_body(n, from_phone_no)}


def hello_envelope(job_id: str, to: str, from_phone_no: str = "+15550000001") -> Any:
    """The envelope another Celery app publishes for ``hello_world`` (task contract v1)."""
    from dispatcher.job.envelope import JobEnvelope

    payload = {"name": "hello_world", "language": "en"}
    return JobEnvelope(
        id=job_id,
        channel="cloud",
        type="template",
        to=to,
        from_phone_no=from_phone_no,
        payload=payload,
    )
