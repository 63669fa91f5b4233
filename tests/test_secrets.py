"""Secrets never leave where they are kept: a faulty run through every path, then a search
of everything it left behind (logs, every Redis key and value, the events stream, the
queue messages) for the API secret, the producer tokens and the webhook verify token."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests

from tests.support.data import BEARER, TOKENS
from tests.support.receiver import webhook_receiver
from tests.support.sentry import sentry_dsn, sentry_envelopes
from tests.support.stack import Stack, own_stack
from tests.support.waiting import wait_until

SECRETS = ["secr_sandbox", "verify_sandbox", *(t["token"] for t in TOKENS)]


def everything_in(client: redis.Redis) -> str:
    """Every key and value in Redis, as text (the unacked hash and queues included)."""
    parts = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        parts.append(key.decode(errors="replace"))
        if kind == "string":
            parts.append(str(client.get(key)))
        elif kind == "hash":
            parts.append(str(client.hgetall(key)))
        elif kind == "list":
            parts.append(str(client.lrange(key, 0, -1)))
        elif kind == "set":
            parts.append(str(client.smembers(key)))
        elif kind == "zset":
            parts.append(str(client.zrange(key, 0, -1)))
        elif kind == "stream":
            parts.append(str(client.xrange(key)))
    return "\n".join(parts)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with own_stack(tmp_path, "--seed", "11") as stack:
        yield stack


def test_no_secret_in_logs_ledger_stream_messages_or_reports_after_a_faulty_run(
    stack: Stack,
) -> None:
    reports = contextlib.ExitStack()
    sentry = reports.enter_context(webhook_receiver())
    stack.env["SENTRY_DSN"] = sentry_dsn(sentry)
    stack.env["RETRY_MAX_ATTEMPTS"] = "3"
    url = stack.start_serve()
    stack.sandbox.webhooks(url=url + "/v1/webhooks/waapi", duplicate_rate=0.3)
    stack.sandbox.faults(
        rate_5xx=0.3,
        rate_reset=0.1,
        rate_429=0.1,
        retry_after_s=1,
        recipient_errors={"+15552220003": 131026, "+15552220004": 130429},  # 0004 goes dead
    )
    with stack.dispatcher() as dispatcher:
        ids = []
        for n in range(40):
            answer = requests.post(
                url + "/v1/whatsapp-api/messages/template",
                headers=BEARER["crm"],
                json={
                    "to": f"+1555222{n:04d}",
                    "fromPhoneNo": "+15550000001",
                    "name": "hello_world",
                    "language": "en",
                },
                timeout=10,
            )
            ids.append(answer.json()["data"]["jobId"])
        # Failures that carry text back to us: a bad token, a bad signature, a bad body.
        requests.post(
            url + "/v1/whatsapp-api/messages/text",
            headers={"Authorization": "Bearer secr_sandbox"},
            json={},
            timeout=10,
        )
        requests.post(
            url + "/v1/webhooks/waapi",
            data=b"{}",
            headers={"X-Hub-Signature-256": "sha256=verify_sandbox"},
            timeout=10,
        )
        requests.post(
            url + "/v1/whatsapp-api/messages/text",
            headers=BEARER["crm"],
            json={
                "to": "+15552229999",
                "fromPhoneNo": "+15550000001",
                "body": "my secret is tok_crm_0123456789abcdef",
            },
            timeout=10,
        )
        queued = everything_in(dispatcher.ledger.client)  # messages still in their queues
        stack.start("worker", "-c", "8", "-l", "info", log="worker")  # verbose on purpose
        stack.start_beat()
        stack.wait_states(dispatcher, ids, timeout_s=90)
        wait_until(lambda: stack.sandbox.stats()["webhooks_posted"] > 0, timeout_s=20)
        stored = queued + everything_in(dispatcher.ledger.client)
        dead = sum(1 for i in ids if dispatcher.job(i).state == "dead")
    stack.stop()  # error reports are flushed on the way out
    with reports:
        sent_reports = "\n".join(sentry_envelopes(sentry))
    logs = "\n".join(stack.log(name) for name in ("worker", "beat", "serve"))
    assert dead >= 1 and "job dead after 3 attempts" in sent_reports  # reports were made
    for secret in SECRETS:
        assert secret not in sent_reports, f"{secret[:6]}... in an error report"
    assert "waapi.send" in stored and "waapi:events" in stored  # we did look at the queue
    assert "attempt 1: ServerError -> retry_wait" in logs  # the faults did happen
    for secret in SECRETS:
        assert secret not in logs, f"{secret[:6]}... in the logs"
    for secret in SECRETS:
        if secret.startswith("tok_crm"):
            # A producer put it in a message body on purpose: bodies are theirs to send;
            # it must still not be in the logs (checked above).
            continue
        assert secret not in stored, f"{secret[:6]}... in Redis"
    assert json.dumps(stack.env).count("secr_sandbox") == 1  # only the configured key
