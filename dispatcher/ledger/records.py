"""A job as the ledger keeps it, read back into a typed record."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from dispatcher.job.envelope import JobEnvelope
from dispatcher.ledger.states import SENT_STATES, TERMINAL_STATES

# A job's record keeps these envelope fields as columns of its own (enqueue.lua writes
# them, the search and the console read them), so its 'env' keeps only the rest of the
# envelope and a queued job's Redis holds each value once. (record column, envelope
# field), in the order claim_job (prelude.lua) returns the columns with a claim. A record
# written before this kept the whole envelope in 'env', which wins where both say.
ENVELOPE_COLUMNS = (
    ("ch", "channel"),
    ("type", "type"),
    ("to", "to"),
    ("from", "fromPhoneNo"),
    ("sess", "sessionId"),
    ("lane", "lane"),
    ("idem", "idempotencyKey"),
    ("camp", "campaignId"),
    ("nb", "notBefore"),  # ms, 0 = none
    ("exp", "expiresAt"),  # ms, 0 = none
)
# What Ledger.envelope reads of a record, in envelope_of's order.
ENVELOPE_FIELDS = ("env", *(column for column, _ in ENVELOPE_COLUMNS))
_MS_COLUMNS = frozenset({"notBefore", "expiresAt"})
_IN_COLUMNS = {"id", "v"} | {  # by Python name, as model_dump's exclude takes them
    name
    for name, field in JobEnvelope.model_fields.items()
    if (field.alias or name) in {wire for _, wire in ENVELOPE_COLUMNS}
}


def stored_envelope(envelope: JobEnvelope) -> str:
    """What a job's record keeps as 'env': its envelope without the record's columns
    (and without ``id`` and ``v``, which the key and the code say)."""
    return envelope.model_dump_json(by_alias=True, exclude_none=True, exclude=_IN_COLUMNS)


def envelope_of(
    job_id: str, env: str | bytes, columns: Sequence[str | bytes | None]
) -> JobEnvelope:
    """A job's envelope from its record: 'env' with ``columns`` (the values of
    ``ENVELOPE_COLUMNS``, in order) laid back in. Raises pydantic's ValidationError for a
    record that is not a job's."""
    fields: dict[str, Any] = {"id": job_id}
    for (_, wire), raw in zip(ENVELOPE_COLUMNS, columns, strict=True):
        value = raw.decode() if isinstance(raw, bytes) else raw
        if not value or (wire in _MS_COLUMNS and value == "0"):
            continue  # none
        fields[wire] = _ms_to_datetime(int(value)) if wire in _MS_COLUMNS else value
    return JobEnvelope.model_validate({**fields, **json.loads(env)})


def _ms_to_datetime(ms: int) -> datetime:
    """Exact to the millisecond (a float of seconds is not)."""
    return datetime.fromtimestamp(ms // 1000, UTC) + timedelta(milliseconds=ms % 1000)


def _ms_to_iso(value: str | None) -> str | None:
    if not value or value == "0":
        return None
    return _ms_to_datetime(int(value)).isoformat(timespec="milliseconds")


def _history(raw: str | None) -> list[dict[str, Any]]:
    """The ledger's attempt history (JSON written by the scripts), times as ISO."""
    if not raw:
        return []
    items = json.loads(raw)
    if not isinstance(items, list):  # cjson writes an empty list as {}
        return []
    out = []
    for item in items:
        entry = dict(item)
        entry["at"] = _ms_to_iso(str(entry.get("at", 0)))
        out.append(entry)
    return out


@dataclass(frozen=True)
class JobRecord:
    """One job: where it stands, what the gateway said, and when each state was reached."""

    id: str
    state: str
    channel: str
    type: str
    to: str
    from_phone_no: str | None
    session_id: str | None
    lane: str
    attempts: int
    wamid: str | None
    error: dict[str, Any] | None
    idempotency_key: str | None
    campaign_id: str | None
    queue: str
    times: dict[str, str]
    ambiguous: int
    next_attempt_at: str | None
    fallback: bool = False
    created_ms: int = 0
    replay_of: str | None = None
    replayed_as: str | None = None
    # Every failed attempt (and notes such as a reconciled send), oldest first:
    # {"at": ISO time, "state", "attempt", "status"?, "code"?, "message"?}.
    history: tuple[dict[str, Any], ...] = ()
    # What Meta charges, from the status webhooks: {"category", "billable", "model"?,
    # "conversation"?, "origin"?}; None until a status carried pricing.
    pricing: dict[str, Any] | None = None
    # What a job in retry_wait waits for when no attempt failed (a limit, the messaging
    # limit, a paused number or campaign); None otherwise.
    waiting_for: str | None = None

    @classmethod
    def from_hash(cls, job_id: str, raw: Mapping[bytes, bytes]) -> JobRecord:
        """The record of ``job_id`` from its hash (the key names the job: the hash does
        not repeat its id)."""
        h = {k.decode(): v.decode() for k, v in raw.items()}
        error = None
        not_sent = h["state"] not in SENT_STATES  # once sent, the error is history
        if not_sent and (h.get("err_msg") or h.get("err_status") or h.get("err_code")):
            error = {
                "status": int(h["err_status"]) if h.get("err_status") else None,
                "code": int(h["err_code"]) if h.get("err_code") else None,
                "message": h.get("err_msg") or None,
            }
        stamps = [(name[2:], value) for name, value in h.items() if name.startswith("t_")]
        if h.get("created"):
            stamps.insert(0, ("created", h["created"]))
        times = {  # in the order they happened (a timeline), created first
            name: iso
            for name, value in sorted(stamps, key=lambda stamp: int(stamp[1] or 0))
            if (iso := _ms_to_iso(value)) is not None
        }
        return cls(
            id=job_id,
            state=h["state"],
            channel=h.get("ch", ""),
            type=h.get("type", ""),
            to=h.get("to", ""),
            from_phone_no=h.get("from") or None,
            session_id=h.get("sess") or None,
            lane=h.get("lane", ""),
            attempts=int(h.get("att", "0")),
            wamid=h.get("wamid") or None,
            error=error,
            idempotency_key=h.get("idem") or None,
            campaign_id=h.get("camp") or None,
            queue=h.get("queue", ""),
            times=times,
            ambiguous=int(h.get("ambiguous", "0")),
            next_attempt_at=_ms_to_iso(h.get("next_at")) if h["state"] == "retry_wait" else None,
            fallback=h.get("fallback") == "1",
            created_ms=int(h.get("created", "0")),
            replay_of=h.get("replay_of") or None,
            replayed_as=h.get("replayed_as") or None,
            history=tuple(_history(h.get("hist"))),
            pricing=_pricing(h),
            waiting_for=(h.get("wait_reason") or None) if h["state"] == "retry_wait" else None,
        )

    @property
    def settled(self) -> bool:
        return self.state in TERMINAL_STATES

    def to_dict(self) -> dict[str, Any]:
        """JSON for scripts and the HTTP API (``id``, ``state``, ``wamid``, ``attempts``,
        ``error`` and the rest)."""
        return {
            "id": self.id,
            "state": self.state,
            "channel": self.channel,
            "type": self.type,
            "to": self.to,
            "fromPhoneNo": self.from_phone_no,
            "sessionId": self.session_id,
            "lane": self.lane,
            "attempts": self.attempts,
            "wamid": self.wamid,
            "error": self.error,
            "idempotencyKey": self.idempotency_key,
            "campaignId": self.campaign_id,
            "queue": self.queue,
            "times": self.times,
            "ambiguous": self.ambiguous,
            "nextAttemptAt": self.next_attempt_at,
            "fallbackTemplate": self.fallback,
            "replayOf": self.replay_of,
            "replayedAs": self.replayed_as,
            "history": list(self.history),
            "pricing": self.pricing,
            "waitingFor": self.waiting_for,
        }


def _pricing(h: Mapping[str, str]) -> dict[str, Any] | None:
    if "price_cat" not in h:
        return None
    found: dict[str, Any] = {"category": h["price_cat"], "billable": h.get("billable") == "1"}
    for field, name in (
        ("price_model", "model"),
        ("conv_id", "conversation"),
        ("conv_origin", "origin"),
    ):
        if h.get(field):
            found[name] = h[field]
    if h.get("price_micros"):  # PRICES' estimate for it
        found["estimatedCost"] = int(h["price_micros"]) / 1_000_000
    return found
