"""Log lines: JSON with the fields a pipeline filters on, recipients masked, secrets
scrubbed; readable text on a terminal."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from dispatcher.telemetry.logs import JsonFormatter, TextFormatter
from dispatcher.telemetry.scrub import Scrubber
from tests.support.stack import own_stack

SCRUB = Scrubber(["secr_sandbox"], own_numbers=["+15550000001"])


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("dispatcher.worker", logging.INFO, __file__, 1, message, args, None)
    for name, value in extra.items():
        setattr(rec, name, value)
    return rec


def test_a_json_line_carries_the_fields_masked_and_scrubbed() -> None:
    line = JsonFormatter(SCRUB).format(
        record(
            "job %s failed with %s",
            "j1",
            "secr_sandbox",
            job="j1",
            number="+15550000001",
            to="+15553330001",
            lane="bulk",
            state="failed",
            code=131026,
        )
    )
    data = json.loads(line)
    assert data["msg"] == "job j1 failed with [Filtered]"
    assert data["level"] == "info" and data["logger"] == "dispatcher.worker"
    assert data["job"] == "j1" and data["number"] == "+15550000001"  # our number: readable
    assert data["to"] == "+155******01"
    assert data["lane"] == "bulk" and data["state"] == "failed" and data["code"] == 131026
    assert data["ts"].endswith("+00:00")


def test_text_lines_are_for_people() -> None:
    line = TextFormatter(SCRUB).format(record("job j1 sent", job="j1", to="+15553330001"))
    assert "INFO" in line and "job j1 sent" in line and "[job=j1 to=+155******01]" in line


def test_a_worker_writes_json_lines_with_job_fields(tmp_path: Path) -> None:
    with own_stack(tmp_path, "--no-window", log_format="json") as stack:
        stack.sandbox.faults(recipient_errors={"+15552220002": 131026})
        stack.start("worker", "-c", "2", "-l", "info", log="worker")
        with stack.dispatcher() as dispatcher:
            sent = dispatcher.send_template("+15552220001", "+15550000001", "hello_world", "en")
            failed = dispatcher.send_template("+15552220002", "+15550000001", "hello_world", "en")
            stack.wait_states(dispatcher, [sent, failed])
        stack.stop()
        text = stack.log("worker")
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    ours = {line["job"]: line for line in lines if line["logger"] == "dispatcher.worker"}
    print("\n" + json.dumps(ours[sent]))
    assert ours[sent]["state"] == "sent" and ours[sent]["to"] == "+155******01"
    assert ours[sent]["number"] == "+15550000001" and ours[sent]["lane"] == "transactional"
    assert ours[failed]["state"] == "failed" and ours[failed]["code"] == 131026
    assert any(line["logger"].startswith("celery") for line in lines)  # Celery's too
    assert "15552220001" not in text and "15552220002" not in text
