"""Prometheus metrics after a real run: names, bounded labels, and values that match
the ledger and the gateway's own count of calls."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.data import BEARER
from tests.support.stack import own_stack

N1, N2 = "+15550000001", "+15550000002"


def scrape(url: str) -> dict[str, list[Any]]:
    answer = requests.get(url + "/metrics", headers=BEARER["prometheus"], timeout=10)
    assert answer.status_code == 200, answer.text
    families = text_string_to_metric_families(answer.text)
    return {f.name: f.samples for f in families}


def total(samples: list[Any], name: str, **labels: str) -> float:
    return sum(
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def test_metrics_match_the_ledger_after_a_run_with_failures_and_retries(tmp_path: Path) -> None:
    with own_stack(tmp_path, "--no-window", retry_max_attempts=3) as stack:
        url = stack.start_serve()
        assert requests.get(url + "/metrics", timeout=5).status_code == 401
        assert (
            requests.get(url + "/metrics", headers=BEARER["reader"], timeout=5).status_code == 403
        )
        stack.sandbox.faults(burst_5xx=2, recipient_errors={"+15552220007": 131026})
        with stack.dispatcher() as dispatcher:
            tx = [
                dispatcher.send_template(f"+1555222{n:04d}", N1, "hello_world", "en")
                for n in range(30)
            ]
            bulk = [
                r.job_id
                for r in dispatcher.send_many(
                    {
                        "type": "template",
                        "to": f"+1555333{n:04d}",
                        "fromPhoneNo": N2,
                        "name": "hello_world",
                        "language": "en",
                    }
                    for n in range(20)
                )
            ]
            before = scrape(url)
            dispatcher.ledger.note_beat()  # what beat's once-a-minute task does
            stack.start_worker(threads=4)
            stack.start_beat()
            states = stack.wait_states(dispatcher, tx + bulk, timeout_s=60)
            records = [dispatcher.job(j) for j in tx + bulk]
        after = scrape(url)
        calls = stack.sandbox.stats()["counters"]["requests"]

    assert collections.Counter(states.values()) == {"sent": 49, "failed": 1}
    # Before the workers: everything queued, nothing else.
    inflight = before["waapi_jobs_in_flight"]
    assert (
        total(inflight, "waapi_jobs_in_flight", number=N1, lane="transactional", state="queued")
        == 30
    )
    assert total(inflight, "waapi_jobs_in_flight", number=N2, lane="bulk", state="queued") == 20
    assert total(before["waapi_queue_messages"], "waapi_queue_messages", number=N1) == 30
    assert total(before["waapi_queue_messages"], "waapi_queue_messages", number=N2) == 1  # a batch
    # After: transitions match the ledger, nothing is left in flight.
    jobs = after["waapi_jobs"]
    retries = total(jobs, "waapi_jobs_total", state="retry_wait")
    assert retries == 2  # the two 503s, retried by the worker's thread itself
    assert total(jobs, "waapi_jobs_total", state="queued") == 50  # not through the queue
    assert total(jobs, "waapi_jobs_total", number=N2, lane="bulk", state="sent") == 20
    assert total(jobs, "waapi_jobs_total", state="sent") == 49
    assert total(jobs, "waapi_jobs_total", number=N1, state="failed") == 1
    attempts = sum(r.attempts for r in records if r)
    assert total(jobs, "waapi_jobs_total", state="sending") == attempts == calls
    assert total(after["waapi_jobs_in_flight"], "waapi_jobs_in_flight") == 0
    errors = after["waapi_job_errors"]
    assert total(errors, "waapi_job_errors_total", number=N1, code="131026") == 1
    assert total(errors, "waapi_job_errors_total", code="503") == 2
    # One gateway latency observation per call; enqueue-to-sent per sent job.
    gateway = after["waapi_gateway_latency_seconds"]
    assert total(gateway, "waapi_gateway_latency_seconds_count") == calls
    assert total(gateway, "waapi_gateway_latency_seconds_bucket", le="+Inf") == calls
    to_sent = after["waapi_enqueue_to_sent_seconds"]
    assert total(to_sent, "waapi_enqueue_to_sent_seconds_count") == 49
    assert total(to_sent, "waapi_enqueue_to_sent_seconds_sum") > 0
    assert total(after["waapi_queue_messages"], "waapi_queue_messages") == 0
    assert total(after["waapi_workers_alive"], "waapi_workers_alive") == 1
    assert total(after["waapi_dead_letters"], "waapi_dead_letters") == 0
    assert total(after["waapi_number_paused"], "waapi_number_paused") == 0
    assert total(before["waapi_beat_last_seen_seconds"], "waapi_beat_last_seen_seconds") == -1
    assert 0 <= total(after["waapi_beat_last_seen_seconds"], "waapi_beat_last_seen_seconds") < 60
    # Bounded labels: no recipient and no job id anywhere.
    label_values = {v for samples in after.values() for s in samples for v in s.labels.values()}
    assert not any(v.startswith(("+1555222", "+1555333")) for v in label_values)
    assert not any(v in label_values for v in tx + bulk)
