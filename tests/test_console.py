"""The console in a real browser (headless Chromium, Selenium) against the real service,
workers, beat, Redis and the sandbox: sign-in, a job looked up, a campaign created from a
CSV and paused, a dead letter replayed. Each page's screenshot goes to ``var/console/``
(``make screenshots``: to ``docs/console/``, the pictures in docs/console.md).
"""

from __future__ import annotations

import csv
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests
from selenium.webdriver.common.by import By

from tests.support.browser import Page, chromium
from tests.support.data import BEARER, TOKENS, campaign_spec
from tests.support.stack import Stack, own_stack
from tests.support.waiting import wait_until

FROM = "+15550000001"
TOKEN = {t["name"]: t["token"] for t in TOKENS}
# The campaign's recipients: at its 2 per second, 40 s of sending, so that it is still
# running when the tests pause, resume and cancel it.
AUDIENCE = 80


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = Path(tmp_path_factory.mktemp("console"))
    # Two attempts, so that a job the gateway keeps refusing is a dead letter within
    # seconds (the default, 50, takes minutes); the console's page is what is tested.
    with own_stack(work, "--no-window", retry_max_attempts=2) as stack:
        stack.url = stack.start_serve()  # type: ignore[attr-defined]
        stack.start_worker(threads=4)
        stack.start_beat()
        yield stack


@pytest.fixture(scope="module")
def page(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    driver = chromium(Path(tmp_path_factory.mktemp("chromium")))
    try:
        yield Page(driver, stack.url)  # type: ignore[attr-defined]
    finally:
        driver.quit()


def sign_in(page: Page, token: str) -> None:
    """A new tab's sign-in: the console opened with nothing in its session."""
    page.open()
    page.driver.execute_script("sessionStorage.clear()")
    page.driver.refresh()
    field = page.find("#token")
    field.clear()
    field.send_keys(token)
    page.click("#signin-submit")


def sign_out(page: Page) -> None:
    page.click("#sign-out")
    page.find("#signin")


def test_sign_in_shows_what_the_tokens_scopes_allow(page: Page) -> None:
    sign_in(page, "tok_not_a_token_at_all")
    page.text_of("#signin-error", "Invalid token")
    page.screenshot("sign-in")

    sign_in(page, TOKEN["reader"])  # read only: no campaigns, no dead letters
    page.text_of("#who-name", "reader")
    assert page.visible("#nav a[href='#/overview']") and page.visible("#nav a[href='#/jobs']")
    assert not page.visible("#nav a[href='#/campaigns']")
    assert not page.visible("#nav a[href='#/dlq']")
    page.go("#/dlq")
    assert "lacks the 'admin' scope" in page.text_of("main", "lacks")
    sign_out(page)

    sign_in(page, TOKEN["ops"])
    page.text_of("#who-name", "ops")
    assert page.text(f"tr[data-number='{FROM}'] td:nth-child(5)") == "80"  # its rate per s
    assert page.text(".tiles").count("workers alive") == 1
    wait_until(lambda: page.text(".tiles .tile:nth-child(2) .value") == "1", timeout_s=20)


def test_a_job_is_found_by_its_recipient_and_shows_its_timeline(stack: Stack, page: Page) -> None:
    to = "+15551239001"
    with stack.dispatcher() as dispatcher:
        job_id = dispatcher.send_text(to, FROM, "Your code is 481516")
        stack.wait_states(dispatcher, [job_id], timeout_s=30)
        other = dispatcher.send_text("+15551239002", FROM, "not this one")
        stack.wait_states(dispatcher, [other], timeout_s=30)
    sign_in(page, TOKEN["ops"])
    page.find("#overview")
    page.go("#/jobs")
    page.find("#jobs-to").send_keys(to)
    page.click("#jobs-search button[type=submit]")
    row = page.text(f"tr[data-job='{job_id}']")
    assert to in row and "sent" in row
    assert not page.driver.find_elements(By.CSS_SELECTOR, f"tr[data-job='{other}']")
    page.screenshot("jobs")

    # A page of one job: the next page on request.
    page.go(f"#/jobs?{urlencode({'number': FROM, 'limit': 1})}")
    page.find(f"tr[data-job='{other}']")
    page.click("#older")
    page.find(f"tr[data-job='{job_id}']")
    assert len(page.driver.find_elements(By.CSS_SELECTOR, "#jobs-results tbody tr")) == 2

    page.click(f"tr[data-job='{job_id}']")
    timeline = page.text_of("ol.timeline", "sent")
    assert "queued" in timeline and "sending" in timeline
    record = requests.get(
        f"{stack.url}/v1/jobs/{job_id}",  # type: ignore[attr-defined]
        headers=BEARER["ops"],
        timeout=5,
    ).json()["data"]
    assert record["wamid"] and record["wamid"] in page.text("dl.facts")
    page.screenshot("job")


def test_a_campaign_is_created_from_a_csv_with_a_preview_and_paused(
    stack: Stack, page: Page, tmp_path: Path
) -> None:
    audience = tmp_path / "audience.csv"
    with audience.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["to", "name", "awb"])
        for n in range(AUDIENCE):
            writer.writerow([f"+1555124{n:04d}", f"Customer {n}", f"AWB{n:05d}"])
            if n == 1:
                writer.writerow(["not a number", "Nobody", "AWB0"])  # line 4
            if n == 2:
                writer.writerow(["+15551249999", "", "AWB1"])  # line 6: empty variable
    spec = campaign_spec(  # order_shipped with {{name}} and {{awb}}, due now
        name="Console order updates",
        fromPhoneNos=[FROM],
        throttlePerSecond=2,  # slow enough to pause it in the middle
    ).model_dump(mode="json", by_alias=True, exclude_none=True)
    sign_in(page, TOKEN["marketing"])  # the campaigns scope alone
    page.text_of("#who-name", "marketing")
    assert not page.visible("#nav a[href='#/overview']")
    page.go("#/campaigns")
    page.click("#new-campaign")
    editor = page.find("#campaign-spec")
    assert "order_shipped" in editor.get_attribute("value")  # a spec to start from
    typed = json.dumps(spec, indent=2)
    page.driver.execute_script("arguments[0].value = arguments[1]", editor, typed)
    page.find("#campaign-csv").send_keys(str(audience))
    page.click("#preview")
    summary = page.text_of("#preview-summary", f"{AUDIENCE} recipients")
    assert "2 rows refused" in summary
    assert (
        "phone" in page.text("tr[data-line='4']").lower()
        or "e.164" in page.text("tr[data-line='4']").lower()
    )
    assert "variable name is empty" in page.text("tr[data-line='6']")
    assert "Customer 0" in page.text("#campaign-preview")  # the message as rendered
    assert not requests.get(
        f"{stack.url}/v1/campaigns",  # type: ignore[attr-defined]
        headers=BEARER["marketing"],
        timeout=5,
    ).json()["data"]  # a preview stores nothing
    page.screenshot("new-campaign")

    page.click("#create-campaign")
    page.text_of("#campaign-state", "running", timeout_s=20)
    page.find("svg.funnel rect.bar[data-state='sent']", timeout_s=20)
    page.click("#pause")
    page.text_of("#campaign-state", "paused")
    campaign_id = page.driver.execute_script("return location.hash").split("/")[-1]
    info = requests.get(
        f"{stack.url}/v1/campaigns/{campaign_id}",  # type: ignore[attr-defined]
        headers=BEARER["marketing"],
        timeout=5,
    ).json()["data"]
    assert info["state"] == "paused" and info["recipients"] == AUDIENCE
    time.sleep(1.5)  # a tick: anything already claimed finishes
    sent_then = sum(1 for r in stack.sandbox.sent() if r["to"].startswith("+1555124"))
    time.sleep(3)
    sent_now = sum(1 for r in stack.sandbox.sent() if r["to"].startswith("+1555124"))
    assert 0 < sent_now == sent_then < AUDIENCE  # paused in the middle: nothing more goes
    page.find("#resume")
    page.screenshot("campaign")


def test_a_dead_letter_is_replayed_from_the_console(stack: Stack, page: Page) -> None:
    to = "+15551239100"
    with stack.dispatcher() as dispatcher:
        stack.sandbox.faults(rate_5xx=1.0)
        try:
            doomed = dispatcher.send_template(to, FROM, "hello_world", "en")
            wait_until(lambda: dispatcher.job(doomed).state == "dead", timeout_s=30)
        finally:
            stack.sandbox.faults(rate_5xx=0.0)
        sign_in(page, TOKEN["ops"])
        page.find("#overview")
        page.go("#/dlq")
        assert to in page.text(f"tr[data-job='{doomed}']")
        page.screenshot("dead-letters")
        page.click(f"tr[data-job='{doomed}'] button.replay")
        page.text_of("#flash", "Replayed 1 job")
        page.gone(f"tr[data-job='{doomed}']")
        replayed_as = dispatcher.job(doomed).replayed_as
        assert replayed_as
        stack.wait_states(dispatcher, [replayed_as], timeout_s=30)
        assert dispatcher.job(replayed_as).state == "sent"


def test_a_resumed_campaign_shows_in_the_overview_until_cancelled(stack: Stack, page: Page) -> None:
    """The campaign paused above, resumed from its page: the overview's rates and its
    running campaign come from the status every few seconds; cancelled (after the
    browser's confirmation), it sends no more and shows no next run."""
    sign_in(page, TOKEN["marketing"])
    page.go("#/campaigns")
    campaign_id = page.attr("tr[data-campaign]", "data-campaign")
    row = page.text("tr[data-campaign]")
    assert "Console order updates" in row and "paused" in row
    page.click(f"tr[data-campaign='{campaign_id}']")
    page.click("#resume")
    page.text_of("#campaign-state", "running")

    sign_in(page, TOKEN["ops"])
    page.find(f"#overview tr[data-campaign='{campaign_id}']", timeout_s=20)
    wait_until(lambda: float(page.text(".tiles .tile:first-child .value")) > 0, timeout_s=20)
    assert float(page.text(f"tr[data-number='{FROM}'] td:nth-child(3)")) > 0
    # The recent activity follows the events stream: the campaign's sends as they go.
    first = page.attr("tr[data-event]", "data-event")
    wait_until(lambda: page.attr("tr[data-event]", "data-event") != first, timeout_s=20)
    assert campaign_id in page.text("#overview table:has(tr[data-event])")
    page.screenshot("overview")

    page.go(f"#/campaigns/{campaign_id}")
    page.click("#cancel")
    page.driver.switch_to.alert.accept()
    page.text_of("#campaign-state", "cancelled")
    page.gone("#cancel")
    assert re.search(r"Next run\s+none", page.text("dl.facts"))
    time.sleep(1.5)  # a tick: anything already claimed finishes
    sent_then = sum(1 for r in stack.sandbox.sent() if r["to"].startswith("+1555124"))
    time.sleep(3)
    assert sum(1 for r in stack.sandbox.sent() if r["to"].startswith("+1555124")) == sent_then
    assert sent_then < AUDIENCE
