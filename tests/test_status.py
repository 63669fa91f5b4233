"""``waapi-dispatch status``: one screen with numbers, queues, rates, cooldowns, pauses,
campaigns and their ETA, dead letters, from a real running stack."""

from __future__ import annotations

import io
import json
from pathlib import Path

import requests

from dispatcher.campaigns import Campaigns
from dispatcher.campaigns.audience import rows
from dispatcher.engine.limiter import Limiter
from tests.support.cli import run_cli
from tests.support.data import BEARER, campaign_spec
from tests.support.stack import own_stack
from tests.support.waiting import wait_until


def test_status_shows_a_running_campaign_a_paused_number_and_a_cooling_key(
    tmp_path: Path,
) -> None:
    with own_stack(tmp_path, "--no-window") as stack:
        stack.sandbox.faults(latency_ms=10)
        stack.start_worker(threads=8)
        beat = stack.start_beat()
        url = stack.start_serve()
        with stack.dispatcher() as dispatcher:
            campaigns = Campaigns(dispatcher)
            lines = "".join(
                json.dumps({"to": f"+1555{i:07d}", "name": f"N{i}", "awb": i}) + "\n"
                for i in range(3000)
            )
            created = campaigns.create(
                campaign_spec(fromPhoneNos=["+15550000001"], throttlePerSecond=100),
                rows(io.StringIO(lines), "jsonl"),
            )
            wait_until(
                lambda: campaigns.get(created.campaign_id)["funnel"].get("sent", 0) > 200,
                timeout_s=60,
            )
            live = run_cli("status", "--sample-s", "2", env=stack.env)
            limiter = Limiter(dispatcher.ledger.client, stack.settings())
            limiter.pause("+15550000002", "131048 spam rate limit (test)")
            as_json = run_cli("status", "--json", "--sample-s", "2", env=stack.env)
            over_http = requests.get(
                url + "/v1/status?sampleS=0.5", headers=BEARER["reader"], timeout=10
            )
            no_read = requests.get(url + "/v1/status", headers=BEARER["sender"], timeout=10)
            limiter.cool_down("key:sandbox", 30)  # everything stops: shown, not measured
            as_text = run_cli("status", "--sample-s", "1", env=stack.env)
            campaigns.cancel(created.campaign_id)
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    by_number = {n["number"]: n for n in report["numbers"]}
    assert by_number["+15550000002"]["paused"]["reason"].startswith("131048")
    assert by_number["+15550000001"]["paused"] is None
    assert 50 < by_number["+15550000001"]["sentPerS"] < 130  # the campaign's 100/s
    (campaign,) = report["campaigns"]
    assert campaign["id"] == created.campaign_id and campaign["state"] == "running"
    assert campaign["audience"] == 3000 and 200 < campaign["settled"] < 3000
    assert campaign["perS"] > 0 and campaign["etaS"] > 0
    assert report["workersAlive"] == 1 and report["deadLetters"] == 0
    assert 0 <= report["beatSeenAgoS"] < 5  # its tick, every second
    assert report["beatLeader"].endswith(":" + str(beat.pid))  # the one beat leads
    # The same report over HTTP (scope read), for the console and any language.
    assert over_http.status_code == 200, over_http.text
    served = over_http.json()["data"]
    assert served.keys() == report.keys()
    assert {n["number"]: n["paused"] is not None for n in served["numbers"]} == {
        "+15550000001": False,
        "+15550000002": True,
    }
    assert [c["id"] for c in served["campaigns"]] == [created.campaign_id]
    assert no_read.status_code == 403 and "lacks the 'read' scope" in no_read.json()["error"]
    assert as_text.returncode == 0, as_text.stderr
    for text in (
        f"(leader {report['beatLeader']})",
        "numbers",
        "+15550000002",
        "paused",
        "key sandbox: cooling down",
        "campaigns",
        created.campaign_id,
    ):
        assert text in as_text.stdout, as_text.stdout
    print("\n" + live.stdout + "\n" + as_text.stdout)
    assert live.returncode == 0, live.stderr
    eta = live.stdout.split(created.campaign_id, 1)[1].splitlines()[0].split()[-1]
    assert eta.count(":") == 2  # h:mm:ss: the campaign will finish at the measured rate
