"""Contact writes (POST/PATCH /contacts) queued as jobs like sends, from Python, HTTP and
the CLI, through a real worker to the sandbox: lane, idempotency, the ledger, and the
gateway's own refusals."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from dispatcher.errors import InvalidRequest, NotPermitted
from dispatcher.producer.api import Dispatcher
from tests.support.cli import run_cli
from tests.support.data import BEARER
from tests.support.stack import Stack, make_settings, own_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with own_stack(Path(tmp_path_factory.mktemp("contacts"))) as running:
        running.start_worker(threads=4)
        yield running


def test_contact_writes_are_jobs_from_python_http_and_the_cli(stack: Stack) -> None:
    url = stack.start_serve()
    with stack.dispatcher() as dispatcher:
        upsert = dispatcher.upsert_contact(
            "+919876543210", first_name="Ann", tags=["vip"], idempotency_key="crm-1"
        )
        again = dispatcher.enqueue(
            "contacts", "upsert", {"phoneNumber": "+919876543210"}, idempotency_key="crm-1"
        )
        assert (again.job_id, again.duplicate) == (upsert, True)
        assert stack.wait_states(dispatcher, [upsert]) == {upsert: "sent"}
        # PATCH only updates: the contact written above is there, another is not.
        update = dispatcher.update_contact("9876543210", {"email": "ann@example.com"})
        missing = dispatcher.update_contact("+919876500000", {"first_name": "Nobody"})
        states = stack.wait_states(dispatcher, [update, missing])
        assert states == {update: "sent", missing: "failed"}
        failed = dispatcher.job(missing)
        assert failed is not None and failed.error is not None
        assert (failed.error["status"], failed.error["message"]) == (404, "Contact not found")
        job = dispatcher.job(upsert)
        assert job is not None and (job.channel, job.type, job.to) == (
            "contacts",
            "upsert",
            "+919876543210",
        )
        assert job.queue == "waapi.contacts.15550000001.tx" and job.wamid is None

        answer = requests.post(
            url + "/v1/contacts",
            json={"phoneNumber": "9876543211", "first_name": "Bo", "lane": "bulk"},
            headers=BEARER["crm"],
            timeout=10,
        )
        assert answer.status_code == 202, answer.text
        via_http = answer.json()["data"]["jobId"]
        patch = requests.patch(
            url + "/v1/contacts",
            json={"phone_number": "9876543211", "updates": {"last_name": "Lee"}},
            headers=BEARER["crm"],
            timeout=10,
        )
        assert patch.status_code == 202, patch.text
        refused = requests.patch(
            url + "/v1/contacts",
            json={"phone_number": "9876543211", "updates": {}},
            headers=BEARER["crm"],
            timeout=10,
        )
        assert refused.status_code == 400 and "No updatable fields" in refused.text
        assert requests.post(url + "/v1/contacts", json={}, timeout=10).status_code == 401
        via_patch = patch.json()["data"]["jobId"]
        assert stack.wait_states(dispatcher, [via_http, via_patch]) == {
            via_http: "sent",
            via_patch: "sent",
        }
        assert dispatcher.job(via_http).lane == "bulk"  # type: ignore[union-attr]

        printed = run_cli(
            "contact", "upsert", "+919876543212", "--first-name", "Cy", "--tag", "a",
            "--tag", "b", "--json", env=stack.env,
        )  # fmt: skip
        assert printed.returncode == 0, printed.stderr
        via_cli = json.loads(printed.stdout)["jobId"]
        assert stack.wait_states(dispatcher, [via_cli]) == {via_cli: "sent"}
        bad = run_cli("contact", "update", "+919876543212", env=stack.env)
        assert bad.returncode == 2 and "No updatable fields provided" in bad.stderr


def test_a_key_that_may_not_write_contacts_is_refused_at_enqueue(redis_url: str) -> None:
    import redis

    keys = [{"name": "sender", "key": "waapi_s", "numbers": ["+15550000001"],
             "scopes": ["messages.send"]}]  # fmt: skip
    settings = make_settings(redis_url, waapi_keys=json.dumps(keys))
    with Dispatcher(settings, redis.Redis.from_url(redis_url)) as dispatcher:
        with pytest.raises(NotPermitted, match=r"API key needs 'contacts\.write'"):
            dispatcher.upsert_contact("+919876543210", first_name="Ann")
        with pytest.raises(InvalidRequest, match="fromPhoneNo is not a number of any configured"):
            dispatcher.upsert_contact("+919876543210", from_phone_no="+15559999999")
        assert dispatcher.ledger.client.dbsize() == 0  # nothing queued
