"""Commands that enqueue jobs and read the ledger: send, send-many, job, jobs."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, TextIO

import click

from dispatcher.cli.common import (
    counted,
    dispatcher_or_exit,
    echo_listing,
    error_text,
    fail,
    queueing,
    reader_or_exit,
    refusal_text,
)
from dispatcher.errors import DispatcherError
from dispatcher.gateway import CLOUD_KINDS, QR_KINDS
from dispatcher.job.line import BadLine, json_lines
from dispatcher.ledger.records import JobRecord
from dispatcher.ledger.states import STATES
from dispatcher.producer.api import Enqueued

# CLI flag -> gateway field; the value is text unless listed in JSON_FIELDS or FLAGS.
TEXT_FIELDS = {
    "body": "body",
    "name": "name",
    "language": "language",
    "link": "link",
    "media_id": "mediaId",
    "caption": "caption",
    "filename": "filename",
    "body_text": "bodyText",
    "header_text": "headerText",
    "footer_text": "footerText",
    "button_text": "buttonText",
    "url": "url",
    "flow_id": "flowId",
    "flow_cta": "flowCta",
    "flow_token": "flowToken",
    "flow_action": "flowAction",
    "screen": "screen",
    "mode": "mode",
    "address": "address",
    "country_code": "countryCode",
    "message_type": "type",
    "reply_to": "replyToWaMessageId",
    "session_id": "sessionId",
}
JSON_FIELDS = {
    "components": "components",
    "buttons": "buttons",
    "sections": "sections",
    "data": "data",
    "contact": "contact",
    "payload": "payload",
}
NUMBER_FIELDS = {"latitude": "latitude", "longitude": "longitude"}
KINDS = sorted(set(CLOUD_KINDS) | set(QR_KINDS))


def _options(fn: Any) -> Any:
    for flag in reversed(list(TEXT_FIELDS)):
        fn = click.option(
            f"--{flag.replace('_', '-')}",
            flag,
            default=None,
            help=f"gateway field {TEXT_FIELDS[flag]}",
        )(fn)
    for flag in reversed(list(JSON_FIELDS)):
        fn = click.option(
            f"--{flag}", flag, default=None, help=f"gateway field {JSON_FIELDS[flag]} as JSON"
        )(fn)
    for flag in NUMBER_FIELDS:
        fn = click.option(f"--{flag}", flag, type=float, default=None)(fn)
    return fn


@click.command()
@click.argument("message_kind", metavar="TYPE", type=click.Choice(KINDS))
@click.option("--from", "from_phone_no", help="fromPhoneNo: the sending number (E.164).")
@click.option("--to", required=True, help="The recipient (E.164).")
@click.option("--channel", type=click.Choice(["cloud", "qr"]), default="cloud", show_default=True)
@click.option("--preview-url/--no-preview-url", default=None)
@_options
@click.option("--idempotency-key", help="A second send with this key queues nothing.")
@click.option(
    "--lane",
    type=click.Choice(["transactional", "bulk"]),
    default="transactional",
    show_default=True,
)
@click.option(
    "--not-before",
    type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z"]),
    help="Send no earlier than this (ISO 8601 with offset).",
)
@click.option(
    "--expires-at",
    type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z"]),
    help="Never send after this; the job becomes 'expired'.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def send(
    message_kind: str,
    from_phone_no: str | None,
    to: str,
    channel: str,
    preview_url: bool | None,
    idempotency_key: str | None,
    lane: str,
    not_before: datetime | None,
    expires_at: datetime | None,
    as_json: bool,
    **fields: Any,
) -> None:
    """Queue one message; prints the job id. Flags are named after the gateway's fields."""
    body: dict[str, Any] = {"to": to}
    if from_phone_no:
        body["fromPhoneNo"] = from_phone_no
    if preview_url is not None:
        body["previewUrl"] = preview_url
    for flag, value in fields.items():
        if value is None:
            continue
        if flag in JSON_FIELDS:
            try:
                body[JSON_FIELDS[flag]] = json.loads(value)
            except json.JSONDecodeError as exc:
                fail(f"--{flag} is not valid JSON: {exc.msg}", 2)
        else:
            body[(TEXT_FIELDS | NUMBER_FIELDS)[flag]] = value
    with queueing() as dispatcher:
        result = dispatcher.enqueue(
            channel,
            message_kind,
            body,
            lane=lane,
            idempotency_key=idempotency_key,
            not_before=not_before,
            expires_at=expires_at,
        )
    if as_json:
        click.echo(json.dumps({"jobId": result.job_id, "duplicate": result.duplicate}))
    else:
        click.echo(result.job_id + ("  (duplicate: queued earlier)" if result.duplicate else ""))


@click.command("send-many")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option(
    "--lane",
    type=click.Choice(["transactional", "bulk"]),
    default="bulk",
    show_default=True,
    help="Lane of lines that name none.",
)
@click.option("--json", "as_json", is_flag=True)
def send_many(file: TextIO, lane: str, as_json: bool) -> None:
    """Queue the jobs in FILE (JSONL, one job a line, '-' for stdin)."""
    numbered = list(json_lines(file))
    refused: list[dict[str, Any]] = [
        {"line": b.line, "error": b.reason} for b in numbered if isinstance(b, BadLine)
    ]
    valid = [item for item in numbered if not isinstance(item, BadLine)]
    dispatcher = dispatcher_or_exit()
    try:
        results = dispatcher.send_many((item for _, item in valid), lane=lane)  # type: ignore[arg-type]
    except DispatcherError as exc:
        fail(str(exc))
    finally:
        dispatcher.close()
    queued = duplicates = 0
    for (line, _), result in zip(valid, results, strict=True):
        if isinstance(result, Enqueued):
            queued += not result.duplicate
            duplicates += result.duplicate
        else:
            refused.append({"line": line, "error": refusal_text(result)})
    refused.sort(key=lambda r: r["line"])
    if as_json:
        click.echo(json.dumps({"queued": queued, "duplicates": duplicates, "refused": refused}))
    else:
        click.echo(
            f"queued {counted(queued, 'job')}, {counted(duplicates, 'duplicate')}, "
            f"refused {counted(len(refused), 'line')}"
        )
        for item in refused:
            click.echo(f"line {item['line']}: {item['error']}", err=True)
    if refused:
        raise SystemExit(1)


def _print_record(record: JobRecord) -> None:
    click.echo(f"{record.id}  {record.state}")
    rows = [
        ("type", f"{record.channel} {record.type} ({record.lane})"),
        ("from", record.from_phone_no or record.session_id or ""),
        ("to", record.to),
        ("attempts", str(record.attempts)),
        ("wamid", record.wamid or ""),
    ]
    if record.error:
        e = record.error
        rows.append(("error", f"status {e['status']} code {e['code']}: {e['message']}"))
    if record.next_attempt_at:
        rows.append(("next attempt", record.next_attempt_at))
    if record.pricing:
        p = record.pricing
        billed = "billable" if p["billable"] else "not billable"
        rows.append(("pricing", f"{p['category']}, {billed}"))
    rows.extend((f"at {name}", when) for name, when in record.times.items())
    for label, value in rows:
        if value:
            click.echo(f"  {label:<14} {value}")
    if record.history:
        click.echo("  history")
        for item in record.history:
            what = " ".join(
                str(part)
                for part in (item.get("status"), item.get("code"), item.get("message"))
                if part is not None
            )
            click.echo(f"    {item['at']}  attempt {item['attempt']}  {item['state']}: {what}")


@click.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True)
def job(job_id: str, as_json: bool) -> None:
    """Show one job: state, attempts, wamid, error, and when each state was reached."""
    dispatcher = reader_or_exit()
    try:
        record = dispatcher.job(job_id)
    finally:
        dispatcher.close()
    if record is None:
        fail(f"no job {job_id} (unknown, or past retention)")
    if as_json:
        click.echo(json.dumps(record.to_dict()))
    else:
        _print_record(record)


@click.command()
@click.option("--state", type=click.Choice(STATES))
@click.option("--number", help="Only jobs sent from this number.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True)
def jobs(state: str | None, number: str | None, limit: int, as_json: bool) -> None:
    """List recent jobs, newest first."""
    dispatcher = reader_or_exit()
    try:
        records = dispatcher.jobs(state=state, number=number, limit=limit)
    finally:
        dispatcher.close()
    echo_listing(
        records,
        as_json,
        JobRecord.to_dict,
        lambda r: (
            f"{r.id}  {r.state:<10} {r.type:<9} {r.from_phone_no or '':<14} "
            f"att={r.attempts} {r.wamid or ''}" + (f"  {error_text(r.error)}" if r.error else "")
        ),
        empty="no jobs" + (f" {state}" if state else "") + (f" from {number}" if number else ""),
    )
