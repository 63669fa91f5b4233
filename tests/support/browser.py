"""A headless Chromium from Debian's packages (``chromium``, ``chromium-driver``), driven
by Selenium, for the console's tests. Nothing is downloaded: the browser and its driver
are the system's (Selenium Manager is not asked)."""

from __future__ import annotations

import shutil
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
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

    def text_of(self, css: str, wanted: str, timeout_s: float = 15) -> WebElement:
        """The element matching ``css`` once its text contains ``wanted``."""
        WebDriverWait(self.driver, timeout_s).until(
            expected_conditions.text_to_be_present_in_element((By.CSS_SELECTOR, css), wanted),
            f"{css} never said {wanted!r}",
        )
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def gone(self, css: str, timeout_s: float = 15) -> None:
        WebDriverWait(self.driver, timeout_s).until(
            lambda d: not d.find_elements(By.CSS_SELECTOR, css), f"{css} is still there"
        )

    def visible(self, css: str) -> bool:
        found = self.driver.find_elements(By.CSS_SELECTOR, css)
        return bool(found) and found[0].is_displayed()

    def screenshot(self, name: str) -> Path:
        """The page as it is, into the docs (``docs/console/<name>.png``)."""
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
