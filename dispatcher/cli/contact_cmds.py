"""``waapi-dispatch contact upsert|update``: contact writes queued as jobs, like sends."""

from __future__ import annotations

import json
from typing import Any

import click

from dispatcher.cli.common import queueing


def _contact_options(fn: Any) -> Any:
    """The writable fields, named after the gateway's, and the job's options."""
    for decorator in reversed(
        (
            click.argument("phone"),
            click.option("--country-code", help="countryCode (the gateway assumes +91)."),
            click.option("--first-name"),
            click.option("--last-name"),
            click.option("--profile-name"),
            click.option("--email"),
            click.option("--tag", "tags", multiple=True, help="A tag (repeat for several)."),
            click.option("--from", "from_phone_no", help="A number of the key to write with."),
            click.option("--idempotency-key", help="A second job with this key queues nothing."),
            click.option(
                "--lane",
                type=click.Choice(["transactional", "bulk"]),
                default="transactional",
                show_default=True,
            ),
            click.option("--json", "as_json", is_flag=True, help="Print JSON."),
        )
    ):
        fn = decorator(fn)
    return fn


@click.group()
def contact() -> None:
    """Queue contact writes (POST/PATCH /contacts) as jobs."""


def _queue(kind: str, phone: str, options: dict[str, Any]) -> None:
    as_json = options.pop("as_json")
    fields = {
        k: v
        for k, v in {
            "first_name": options.pop("first_name"),
            "last_name": options.pop("last_name"),
            "profile_name": options.pop("profile_name"),
            "email": options.pop("email"),
            "tags": list(options.pop("tags")) or None,
        }.items()
        if v is not None
    }
    country_code, from_phone_no = options.pop("country_code"), options.pop("from_phone_no")
    with queueing() as dispatcher:
        if kind == "upsert":
            job_id = dispatcher.upsert_contact(
                phone, country_code=country_code, from_phone_no=from_phone_no, **fields, **options
            )
        else:
            job_id = dispatcher.update_contact(
                phone, fields, country_code=country_code, from_phone_no=from_phone_no, **options
            )
    click.echo(json.dumps({"jobId": job_id}) if as_json else job_id)


@contact.command()
@_contact_options
def upsert(phone: str, **options: Any) -> None:
    """Create or update the contact PHONE (POST /contacts); prints the job id."""
    _queue("upsert", phone, options)


@contact.command()
@_contact_options
def update(phone: str, **options: Any) -> None:
    """Update the existing contact PHONE (PATCH /contacts; fails when there is none)."""
    _queue("update", phone, options)
