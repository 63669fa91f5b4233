"""The producer API: ``from dispatcher import Dispatcher``.

Every method validates first (nothing invalid is queued; InvalidRequest names the field
and the rule), then records and publishes the job in one atomic Redis step, and returns
the job id once that step has returned.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import redis
from pydantic.alias_generators import to_camel

from config import Settings, load_settings
from dispatcher.errors import InvalidRequest, NotSettledYet
from dispatcher.job.envelope import JobEnvelope
from dispatcher.job.line import parse_job
from dispatcher.job.options import JobOptions
from dispatcher.job.queues import Lane
from dispatcher.ledger.connection import connect
from dispatcher.ledger.jobs import Clock, Ledger
from dispatcher.ledger.records import JobRecord
from dispatcher.ledger.states import TERMINAL_STATES
from dispatcher.producer.prepare import JobPreparer

Channel = Literal["cloud", "qr"]


@dataclass(frozen=True)
class Enqueued:
    """A queued job; ``duplicate`` when its idempotency key had been seen (the id is the
    first job's, and nothing new was queued)."""

    job_id: str
    duplicate: bool = False


class Dispatcher:
    """Enqueue send jobs and read what became of them. Thread-safe."""

    def __init__(
        self, settings: Settings, client: redis.Redis | None = None, clock: Clock = time.time
    ) -> None:
        self.settings = settings
        self.ledger = Ledger(client or connect(settings), settings, clock)
        self._preparer = JobPreparer(settings, self.ledger.clock)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Dispatcher:
        """A dispatcher for ``settings``, or for the environment when none are given."""
        return cls(settings or load_settings())

    def close(self) -> None:
        self.ledger.client.close()

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the general form ----------------------------------------------------------------

    def prepare(
        self, channel: str, message_type: str, body: Mapping[str, Any], *args: Any, **kw: Any
    ) -> JobEnvelope:
        """Validate a job and build its envelope (arguments as ``JobPreparer.prepare``:
        options, default_lane, job_id); raises InvalidRequest, queues nothing."""
        return self._preparer.prepare(channel, message_type, body, *args, **kw)

    def enqueue(
        self,
        channel: str,
        message_type: str,
        body: Mapping[str, Any],
        options: JobOptions | None = None,
        **given: Any,
    ) -> Enqueued:
        """Validate, record and publish one job; says whether it was a duplicate.

        The job's options come as a JobOptions, or by their Python names (``lane="bulk"``,
        ``idempotency_key=...``), or both (the names win)."""
        envelope = self.prepare(channel, message_type, body, JobOptions.of(options, **given))
        [result] = self.ledger.enqueue([envelope])
        return Enqueued(result.removeprefix("dup:"), result.startswith("dup:"))

    def send(
        self,
        channel: str,
        message_type: str,
        body: Mapping[str, Any],
        options: JobOptions | None = None,
        **given: Any,
    ) -> str:
        """Queue one job in the gateway's own body shape; returns the job id."""
        return self.enqueue(channel, message_type, body, options, **given).job_id

    def send_many(
        self, jobs: Iterable[Mapping[str, Any]], *, lane: Lane = "bulk", chunk_size: int = 500
    ) -> list[Enqueued | InvalidRequest]:
        """Queue many jobs (send-many lines); one result per input, in order.

        Valid jobs are recorded ``chunk_size`` at a time in one script call each and
        published as batch messages per number; invalid ones come back as the
        InvalidRequest that refused them and queue nothing.
        """
        results: list[Enqueued | InvalidRequest | None] = []
        pending: list[tuple[int, JobEnvelope]] = []
        # One script call in flight while the next chunk is validated: Redis runs the
        # script on its own core while this thread prepares the next one.
        writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="waapi-send-many")
        in_flight: Future[None] | None = None

        def write(chunk: list[tuple[int, JobEnvelope]]) -> None:
            ids = self.ledger.enqueue([e for _, e in chunk], mode="batch")
            for (index, _), result in zip(chunk, ids, strict=True):
                results[index] = Enqueued(result.removeprefix("dup:"), result.startswith("dup:"))

        def flush() -> None:
            nonlocal in_flight, pending
            if in_flight is not None:
                in_flight.result()  # raises what the previous chunk raised
            in_flight = writer.submit(write, pending)
            pending = []

        try:
            for item in jobs:
                results.append(None)
                try:
                    line = parse_job(item)
                    envelope = self.prepare(
                        line.channel, line.type, line.body, line.options, default_lane=lane
                    )
                except InvalidRequest as exc:
                    results[-1] = exc
                    continue
                pending.append((len(results) - 1, envelope))
                if len(pending) >= chunk_size:
                    flush()
            if pending:
                flush()
            if in_flight is not None:
                in_flight.result()
        finally:
            writer.shutdown(wait=True)
        return [r for r in results if r is not None]

    # --- typed sends: Cloud API -------------------------------------------------------------

    def send_text(
        self,
        to: str,
        from_phone_no: str,
        body: str,
        *,
        preview_url: bool | None = None,
        **options: Any,
    ) -> str:
        """Queue ``POST /whatsapp-api/messages/text``."""
        return self._send_cloud("text", locals())

    def send_template(
        self,
        to: str,
        from_phone_no: str,
        name: str,
        language: str,
        components: Sequence[Mapping[str, Any]] | None = None,
        *,
        reply_to_wa_message_id: str | None = None,
        **options: Any,
    ) -> str:
        """Queue ``POST /whatsapp-api/messages/template``."""
        return self._send_cloud("template", locals())

    def send_buttons(
        self,
        to: str,
        from_phone_no: str,
        body_text: str,
        buttons: Sequence[Mapping[str, str]],
        *,
        header_text: str | None = None,
        footer_text: str | None = None,
        **options: Any,
    ) -> str:
        """Queue ``POST /whatsapp-api/messages/buttons``."""
        return self._send_cloud("buttons", locals())

    def send_list(
        self,
        to: str,
        from_phone_no: str,
        body_text: str,
        button_text: str,
        sections: Sequence[Mapping[str, Any]],
        *,
        header_text: str | None = None,
        footer_text: str | None = None,
        **options: Any,
    ) -> str:
        """Queue ``POST /whatsapp-api/messages/list``."""
        return self._send_cloud("list", locals())

    def send_cta(
        self,
        to: str,
        from_phone_no: str,
        body_text: str,
        button_text: str,
        url: str,
        *,
        header_text: str | None = None,
        footer_text: str | None = None,
        **options: Any,
    ) -> str:
        """Queue ``POST /whatsapp-api/messages/cta``."""
        return self._send_cloud("cta", locals())

    def send_flow(
        self,
        to: str,
        from_phone_no: str,
        body_text: str,
        flow_id: str,
        flow_cta: str,
        *,
        flow_token: str | None = None,
        flow_action: str | None = None,
        screen: str | None = None,
        data: Mapping[str, Any] | None = None,
        mode: str | None = None,
        header_text: str | None = None,
        footer_text: str | None = None,
        **options: Any,
    ) -> str:
        """Queue ``POST /whatsapp-api/messages/flow``."""
        return self._send_cloud("flow", locals())

    def send_media(
        self,
        kind: Literal["image", "video", "audio", "sticker", "document"],
        to: str,
        from_phone_no: str,
        *,
        link: str | None = None,
        media_id: str | None = None,
        caption: str | None = None,
        filename: str | None = None,
        **options: Any,
    ) -> str:
        """Queue ``POST /whatsapp-api/messages/{image,video,audio,sticker,document}``."""
        return self._send_cloud(kind, locals())

    def send_image(self, to: str, from_phone_no: str, **fields: Any) -> str:
        return self.send_media("image", to, from_phone_no, **fields)

    def send_video(self, to: str, from_phone_no: str, **fields: Any) -> str:
        return self.send_media("video", to, from_phone_no, **fields)

    def send_audio(self, to: str, from_phone_no: str, **fields: Any) -> str:
        return self.send_media("audio", to, from_phone_no, **fields)

    def send_sticker(self, to: str, from_phone_no: str, **fields: Any) -> str:
        return self.send_media("sticker", to, from_phone_no, **fields)

    def send_document(self, to: str, from_phone_no: str, **fields: Any) -> str:
        return self.send_media("document", to, from_phone_no, **fields)

    def send_and_upsert(
        self,
        to: str,
        from_phone_no: str,
        type: str,
        payload: Mapping[str, Any],
        *,
        contact: Mapping[str, Any] | None = None,
        country_code: str | None = None,
        **options: Any,
    ) -> str:
        """Queue ``POST /whatsapp-api/messages/send``: upsert the contact and send."""
        return self._send_cloud("send", locals())

    def _send_cloud(self, message_type: str, arguments: dict[str, Any]) -> str:
        """Queue a typed Cloud send from its method's ``locals()``: every parameter is a
        body field under its camelCase name (``body_text`` is ``bodyText``, as the gateway
        spells it), unset ones left out, and ``**options`` are the job's options. Read
        from the signature so that each field is named once, there."""
        fields = {k: v for k, v in arguments.items() if k not in ("self", "kind", "options")}
        return self.send("cloud", message_type, _camel_body(fields), **arguments["options"])

    # --- contacts, queued like sends ---------------------------------------------------------

    def upsert_contact(
        self,
        phone_number: str,
        *,
        country_code: str | None = None,
        from_phone_no: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        profile_name: str | None = None,
        email: str | None = None,
        tags: Sequence[str] | None = None,
        **options: Any,
    ) -> str:
        """Queue ``POST /contacts`` (create or update by phone number) as a job: lane,
        idempotency, retries and the ledger as for a send. ``from_phone_no`` picks the
        key (default: the first that may write contacts)."""
        fields = {
            "phoneNumber": phone_number,
            "countryCode": country_code,
            "fromPhoneNo": from_phone_no,
            "first_name": first_name,
            "last_name": last_name,
            "profile_name": profile_name,
            "email": email,
            "tags": list(tags) if tags is not None else None,
        }
        body = {k: v for k, v in fields.items() if v is not None}
        return self.send("contacts", "upsert", body, **options)

    def update_contact(
        self,
        phone_number: str,
        updates: Mapping[str, Any],
        *,
        country_code: str | None = None,
        from_phone_no: str | None = None,
        **options: Any,
    ) -> str:
        """Queue ``PATCH /contacts`` (only ``updates`` are written; the gateway answers
        404 when there is no such contact, and the job fails) as a job."""
        fields = {
            "phone_number": phone_number,
            "country_code": country_code,
            "fromPhoneNo": from_phone_no,
            "updates": dict(updates),
        }
        body = {k: v for k, v in fields.items() if v is not None}
        return self.send("contacts", "update", body, **options)

    # --- typed sends: QR sessions -----------------------------------------------------------

    def send_qr(
        self,
        kind: Literal["text", "image", "video", "audio", "document", "location"],
        to: str,
        *,
        from_phone_no: str | None = None,
        session_id: str | None = None,
        **fields: Any,
    ) -> str:
        """Queue ``POST /whatsapp-qr/messages/{kind}``; fields in the gateway's names, and
        the job's options (``lane``, ``idempotency_key``, ...) by their Python names."""
        given = {name: fields.pop(name) for name in list(fields) if name in JobOptions.model_fields}
        return self.send(
            "qr", kind, _body(to, from_phone_no, sessionId=session_id, **fields), **given
        )

    # --- reading -------------------------------------------------------------------------

    def job(self, job_id: str) -> JobRecord | None:
        """The job's record, or None when unknown (or past retention)."""
        return self.ledger.get(job_id)

    def jobs(
        self, *, state: str | None = None, number: str | None = None, limit: int = 50
    ) -> list[JobRecord]:
        """Recent jobs, newest first, optionally of one state or sending number."""
        return self.ledger.list(state=state, number=number, limit=limit)

    def wait(
        self,
        job_id: str,
        *,
        until: Iterable[str] = TERMINAL_STATES,
        timeout_s: float = 30.0,
        interval_s: float = 0.05,
    ) -> JobRecord:
        """Poll until the job reaches one of ``until`` (default: settled) and return it.
        Raises NotSettledYet (a TimeoutError, with the last record read) when
        ``timeout_s`` runs out first: an unfinished record is never returned as if it
        were the answer."""
        wanted = set(until)
        deadline = time.monotonic() + timeout_s
        record = self.job(job_id)
        while record is None or record.state not in wanted:
            if time.monotonic() >= deadline:
                where = "not recorded" if record is None else f"still {record.state}"
                raise NotSettledYet(
                    f"job {job_id} is {where} after {timeout_s:g} s (waited for "
                    f"{', '.join(sorted(wanted))})",
                    record,
                )
            time.sleep(interval_s)
            record = self.job(job_id)
        return record


@functools.lru_cache(maxsize=256)
def _camel(name: str) -> str:
    """pydantic's ``to_camel`` runs regular expressions on every call: cached, a
    ``send_template`` costs the producer 147 us of CPU against 158 us. The names are our
    methods' parameters."""
    return to_camel(name)


def _camel_body(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {_camel(k): v for k, v in fields.items() if v is not None}


def _body(to: str, from_phone_no: str | None, **fields: Any) -> dict[str, Any]:
    body = {"to": to, **{k: v for k, v in fields.items() if v is not None}}
    if from_phone_no is not None:
        body["fromPhoneNo"] = from_phone_no
    return body
