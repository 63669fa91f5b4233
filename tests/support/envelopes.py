"""Reading back what a job was queued with."""

from __future__ import annotations

import json
from typing import Any, cast

from dispatcher.ledger.jobs import Ledger


def stored(ledger: Ledger, job_id: str) -> dict[str, Any]:
    """The envelope a job was queued with, as JSON (what another app's message carries as
    ``waapi.send(job=...)``)."""
    envelope = ledger.envelope(job_id)
    assert envelope is not None, job_id
    return cast(dict[str, Any], json.loads(envelope.to_json()))
