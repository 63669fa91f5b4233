"""A headless Chromium from Debian's packages (``chromium``, ``chromium-driver``), driven
by Selenium, for the console's tests. Nothing is downloaded: the browser and its driver
are the system's (Selenium Manager is not asked)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

REPO = Path(__file__).resolve().parents[2]
# Where the pages' pictures go: var/console/ (not tracked), or the docs' own pictures
# with CONSOLE_SCREENSHOTS=docs/console (`make screenshots`), so that a test run does
# not change tracked files.
SCREENSHOTS = REPO / os.environ.get("CONSOLE_SCREENSHOTS", "var/console")
FLAGS = (
    "--headless=new",
    "--no-sandbox",  # root in CI
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
    "--force-device-scale-factor=1",
)


def chromium(profile: Path) -> webdriver.Chrome:
    """A fresh headless Chromium with its own profile directory."""
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if browser is None or driver is None:
        raise RuntimeError(
            "the console's tests need Debian's chromium and chromium-driver "
            "(apt-get install chromium chromium-driver; .ci/run installs them)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    return webdriver.Chrome(options=options, service=Service(executable_path=driver))


class Page:
    """The browser at the console, with waits that say what they waited for."""

    def __init__(self, driver: webdriver.Chrome, base_url: str) -> None:
        self.driver = driver
        self.base_url = base_url

    def open(self, hash_path: str = "") -> None:
        self.driver.get(f"{self.base_url}/console{hash_path}")

    def go(self, hash_path: str) -> None:
        self.driver.execute_script("location.hash = arguments[0]", hash_path)

    def find(self, css: str, timeout_s: float = 15) -> WebElement:
        return WebDriverWait(self.driver, timeout_s).until(
            expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, css)),
            f"nothing visible matches {css}",
        )

    def text_of(self, css: str, wanted: str, timeout_s: float = 15) -> str:
        """The text of the element matching ``css`` once it contains ``wanted``."""
        found: list[str] = []

        def says(_: object) -> bool:
            found[:] = [self.text(css, timeout_s=0)]
            return wanted in found[0]

        WebDriverWait(self.driver, timeout_s).until(says, f"{css} never said {wanted!r}")
        return found[0]

    # Pages that poll draw their content again every few seconds: an element found a
    # moment ago may be gone. These read and click in one step (text, attributes read in
    # the page's own script; a click tried again on the element drawn since).

    def text(self, css: str, timeout_s: float = 15) -> str:
        """The text of the first element matching ``css`` (waiting for one)."""
        return str(self._js(css, "e.innerText", timeout_s))

    def attr(self, css: str, name: str, timeout_s: float = 15) -> str:
        return str(self._js(css, f"e.getAttribute({name!r})", timeout_s))

    def _js(self, css: str, expression: str, timeout_s: float) -> object:
        script = f"const e = document.querySelector(arguments[0]); return e ? {expression} : null"
        if timeout_s <= 0:
            return self.driver.execute_script(script, css) or ""
        return WebDriverWait(self.driver, timeout_s).until(
            lambda d: d.execute_script(script, css), f"nothing matches {css}"
        )

    def click(self, css: str, timeout_s: float = 15) -> None:
        def clicked(driver: webdriver.Chrome) -> bool:
            try:
                element = driver.find_element(By.CSS_SELECTOR, css)
                if not element.is_displayed():
                    return False
                element.click()
            except (NoSuchElementException, StaleElementReferenceException):
                return False
            return True

        WebDriverWait(self.driver, timeout_s).until(clicked, f"could not click {css}")

    def gone(self, css: str, timeout_s: float = 15) -> None:
        WebDriverWait(self.driver, timeout_s).until(
            lambda d: not d.find_elements(By.CSS_SELECTOR, css), f"{css} is still there"
        )

    def visible(self, css: str) -> bool:
        found = self.driver.find_elements(By.CSS_SELECTOR, css)
        return bool(found) and found[0].is_displayed()

    def screenshot(self, name: str) -> Path:
        """The page as it is, as ``<SCREENSHOTS>/<name>.png``."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        # The whole page: the window made as tall as the page for the picture.
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(1280, max(900, min(int(height) + 140, 4000)))
        try:
            self.driver.save_screenshot(str(path))
        finally:
            self.driver.set_window_size(1280, 900)
        return path
