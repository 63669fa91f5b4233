"""Error reports: scrubbed of secrets, phone numbers and bodies, and sent only for what a
person must act on. The worker reports to a real HTTP server on loopback through the
DSN, as it would to Sentry."""

from __future__ import annotations

import json
from pathlib import Path

from dispatcher.telemetry.scrub import FILTERED, Scrubber, mask_number
from tests.support.data import TOKENS
from tests.support.receiver import webhook_receiver
from tests.support.sentry import sentry_dsn, sentry_envelopes, sentry_events
from tests.support.stack import own_stack
from tests.support.waiting import wait_until

STALE_SECRET = "secr_stale_0123456789"
KEYS = [
    {
        "name": "main",
        "key": "waapi_sandbox",
        "secret": "secr_sandbox",
        "numbers": ["+15550000001"],
        "webhook_verify_token": "verify_sandbox",
    },
    # The same key with a secret that was rotated away: the gateway answers 401.
    {"name": "stale", "key": "waapi_sandbox", "secret": STALE_SECRET, "numbers": ["+15550000002"]},
]


def test_the_scrubber_removes_secrets_masks_numbers_and_drops_bodies() -> None:
    scrub = Scrubber(["secr_sandbox", "tok_crm_0123456789abcdef"], own_numbers=["+15550000001"])
    event = {
        "message": "POST failed for +15553330001 with secr_sandbox in the header",
        "extra": {
            "to": "+15553330001",
            "fromPhoneNo": "+15550000001",
            "body": "your code is 4242",
            "headers": {"Authorization": "Bearer tok_crm_0123456789abcdef", "X-Trace": "1"},
            "nested": [{"caption": "private photo"}, "wa_id 15553330001 wrote"],
        },
        "count": 3,
    }
    clean = scrub(event)
    text = json.dumps(clean)
    assert "secr_sandbox" not in text and "tok_crm" not in text
    assert "4242" not in text and "private photo" not in text
    assert "15553330001" not in text
    assert clean["extra"]["to"] == mask_number("+15553330001") == "+155******01"
    assert clean["extra"]["fromPhoneNo"] == "+15550000001"  # our own number stays readable
    assert clean["extra"]["body"] == FILTERED
    assert clean["extra"]["headers"] == {"Authorization": FILTERED, "X-Trace": "1"}
    assert clean["count"] == 3
    kept = Scrubber([], keep_numbers=True)({"to": "+15553330001", "m": "+15553330001"})
    assert kept == {"to": "+15553330001", "m": "+15553330001"}


def test_worker_reports_dead_jobs_auth_failures_and_pauses_scrubbed(tmp_path: Path) -> None:
    with (
        webhook_receiver() as receiver,
        own_stack(
            tmp_path,
            "--no-window",
            waapi_keys=json.dumps(KEYS),
            sentry_dsn=sentry_dsn(receiver),
            sentry_environment="ci",
            retry_max_attempts=2,
        ) as stack,
    ):
        stack.sandbox.faults(burst_5xx=2, recipient_errors={"+15552220099": 131048})
        stack.start_worker(threads=2)
        stack.start_beat()
        with stack.dispatcher() as dispatcher:
            dead = dispatcher.send_text("+15552220001", "+15550000001", "BODY-MARKER-7731")
            stack.wait_states(dispatcher, [dead], timeout_s=30)
            refused = dispatcher.send_template("+15552220002", "+15550000002", "hello_world", "en")
            paused = dispatcher.send_template("+15552220099", "+15550000001", "hello_world", "en")
            retried = dispatcher.send_template("+15552220003", "+15550000001", "hello_world", "en")
            stack.wait_states(dispatcher, [refused], timeout_s=30)
            wait_until(lambda: dispatcher.job(paused).attempts >= 1, timeout_s=30)
            states = {j: dispatcher.job(j).state for j in (dead, refused, retried)}
        wait_until(lambda: len(sentry_events(receiver)) >= 3, timeout_s=30)
        stack.stop()  # the SDK flushes on the way out
        events = sentry_events(receiver)
        everything = "\n".join(sentry_envelopes(receiver))

    assert states[dead] == "dead" and states[refused] == "failed"
    messages = sorted(e["message"] for e in events)
    print("\n".join(messages))
    assert len(events) == 3, messages  # one each; the first 503 (a retry) is not an event
    dead_event = next(e for e in events if e["message"].startswith("job dead"))
    assert dead_event["message"] == "job dead after 2 attempts: ServerError 503"
    assert dead_event["tags"]["job"] == dead and dead_event["tags"]["lane"] == "transactional"
    assert dead_event["environment"] == "ci" and dead_event["release"].startswith("waapi")
    assert dead_event["tags"]["component"] == "worker"
    auth = next(e for e in events if e["message"].startswith("the gateway refused key"))
    assert auth["message"].startswith("the gateway refused key stale: 401")
    pause = next(e for e in events if "paused" in e["message"])
    assert pause["message"].startswith("number +15550000001 paused by the gateway: 131048")
    for secret in ("secr_sandbox", STALE_SECRET, "verify_sandbox", *(t["token"] for t in TOKENS)):
        assert secret not in everything, secret
    assert "BODY-MARKER-7731" not in everything
    for recipient in ("15552220001", "15552220002", "15552220099"):
        assert recipient not in everything, recipient
