"""One browser on one persistent profile, whatever drives it: Playwright (Chromium, Firefox ESR
over WebDriver BiDi) or Selenium (WebKitGTK through WebKitWebDriver). The scenarios see only
`EngineBrowser`: open a page, vote, read the status, reload, run a script, close. A restart is a
close and a `launch` on the same profile; the network goes through the lab's fault proxy.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import subprocess
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import BrowserContext, Playwright, expect
from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait
from selenium.webdriver.webkitgtk.options import Options as WebKitOptions
from selenium.webdriver.webkitgtk.service import Service as WebKitService
from voter import CONTROLLED_BY_ACTIVE_WORKER, WORKER_TIMEOUT_MS

ENGINES = ("chromium", "firefox", "webkit")
CHROMIUM = "/usr/bin/chromium"
FIREFOX = "/usr/bin/firefox-esr"
WEBKIT_DRIVER = "/usr/bin/WebKitWebDriver"
XVFB = "/usr/bin/Xvfb"
SYSTEM_PYTHON = "/usr/bin/python3"  # has PyGObject (python3-gi); the venv does not
WEBKIT_BROWSER = Path(__file__).with_name("webkit_browser.py")
# What each engine needs, with the Debian package that brings it (`make browsers` installs them).
REQUIREMENTS = {
    "chromium": {CHROMIUM: "chromium"},
    "firefox": {FIREFOX: "firefox-esr"},
    "webkit": {
        WEBKIT_DRIVER: "webkit2gtk-driver",
        XVFB: "xvfb",
        "/usr/lib/python3/dist-packages/gi/__init__.py": "python3-gi",
        "/usr/lib/*/girepository-1.0/WebKit2-4.1.typelib": "gir1.2-webkit2-4.1",
    },
}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync"]
OFFLINE_READY = "This page works offline."
SCRIPT_TIMEOUT_S = 120  # the longest script a scenario runs waits 60 s for votes to settle


def missing(engine: str) -> list[str]:
    """What `engine` needs and this machine lacks, as 'path (Debian package)'."""
    return [f"{path} ({package})" for path, package in REQUIREMENTS[engine].items() if not glob.glob(path)]


class EngineBrowser(ABC):
    """A browser window on the poll page, driven through what a voter sees."""

    engine: str

    @abstractmethod
    def open(self, url: str) -> None:
        """Goes to a poll page and waits for its question."""

    @abstractmethod
    def vote(self, label: str) -> None: ...

    @abstractmethod
    def status(self) -> str:
        """The text of the page's status line (role=status)."""

    @abstractmethod
    def wait_for_status(self, pattern: str, timeout_s: float = 60.0) -> str:
        """Waits until the status line matches the regular expression `pattern`; returns it."""

    @abstractmethod
    def wait_until_visible(self, text: str, timeout_s: float = 15.0) -> None: ...

    @abstractmethod
    def visible(self, text: str) -> bool:
        """Whether an element whose own text is `text` is shown now."""

    @abstractmethod
    def reload(self) -> None: ...

    @abstractmethod
    def run(self, script: str, arg: Any = None) -> Any:
        """Runs an (async) function's source in the page with `arg`; returns its result."""

    @abstractmethod
    def close(self) -> None:
        """Closes the browser as a voter would; its profile stays."""

    def wait_until_offline_ready(self) -> None:
        """Until the service worker controls the page and keeps a copy of it."""
        self.run(CONTROLLED_BY_ACTIVE_WORKER, WORKER_TIMEOUT_MS)
        self.wait_until_visible(OFFLINE_READY, WORKER_TIMEOUT_MS / 1000)


class PlaywrightBrowser(EngineBrowser):
    def __init__(self, engine: str, context: BrowserContext) -> None:
        self.engine = engine
        self.context = context
        self.page = context.pages[0] if context.pages else context.new_page()

    def open(self, url: str) -> None:
        self.page.goto(url)
        expect(self.page.get_by_role("radiogroup")).to_be_visible()

    def vote(self, label: str) -> None:
        self.page.get_by_role("radio", name=label, exact=True).check()
        self.page.get_by_role("button", name="Vote", exact=True).click()

    def status(self) -> str:
        return self.page.get_by_role("status").inner_text()

    def wait_for_status(self, pattern: str, timeout_s: float = 60.0) -> str:
        status = self.page.get_by_role("status")
        expect(status).to_have_text(re.compile(pattern), timeout=timeout_s * 1000)
        return status.inner_text()

    def wait_until_visible(self, text: str, timeout_s: float = 15.0) -> None:
        expect(self.page.get_by_text(text)).to_be_visible(timeout=timeout_s * 1000)

    def visible(self, text: str) -> bool:
        return self.page.get_by_text(text, exact=True).is_visible()

    def reload(self) -> None:
        self.page.reload()
        expect(self.page.get_by_role("radiogroup")).to_be_visible()

    def run(self, script: str, arg: Any = None) -> Any:
        return self.page.evaluate(script, arg)

    def close(self) -> None:
        self.context.close()


class SeleniumBrowser(EngineBrowser):
    def __init__(self, engine: str, driver: webdriver.Remote) -> None:
        self.engine = engine
        self.driver = driver
        driver.set_script_timeout(SCRIPT_TIMEOUT_S)

    def open(self, url: str) -> None:
        self.driver.get(url)
        self._wait(lambda d: d.find_elements(By.CSS_SELECTOR, "[role=radiogroup]"), 15, "the poll's question")

    def vote(self, label: str) -> None:
        # The label a voter clicks, found by its text (WebDriver has no accessible-name locator).
        self.driver.find_element(By.XPATH, f"//label[normalize-space(.)={_xpath_literal(label)}]").click()
        self.driver.find_element(By.XPATH, "//button[normalize-space(.)='Vote']").click()

    def status(self) -> str:
        return self.driver.find_element(By.CSS_SELECTOR, "[role=status]").text

    def wait_for_status(self, pattern: str, timeout_s: float = 60.0) -> str:
        self._wait(lambda _: re.search(pattern, self.status()), timeout_s, f"the status to match {pattern!r}")
        return self.status()

    def wait_until_visible(self, text: str, timeout_s: float = 15.0) -> None:
        self._wait(lambda _: self.visible(text), timeout_s, f"{text!r} to be visible")

    def visible(self, text: str) -> bool:
        found = self.driver.find_elements(By.XPATH, f"//*[normalize-space(text())={_xpath_literal(text)}]")
        return any(element.is_displayed() for element in found)

    def reload(self) -> None:
        self.driver.refresh()
        self._wait(lambda d: d.find_elements(By.CSS_SELECTOR, "[role=radiogroup]"), 15, "the poll's question")

    def run(self, script: str, arg: Any = None) -> Any:
        # WebDriver's async scripts end by calling their last argument; a rejection is returned
        # as {__error} so that it is raised here with the browser's message.
        result = self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            f"Promise.resolve(({script})(arguments[0])).then(done, (e) => done({{ __error: String(e) }}));",
            arg,
        )
        if isinstance(result, dict) and "__error" in result:
            raise RuntimeError(f"the script failed in {self.engine}: {result['__error']}")
        return result

    def close(self) -> None:
        with contextlib.suppress(WebDriverException):  # the browser is gone already: what a close is for
            self.driver.quit()

    def _wait(self, condition: Any, timeout_s: float, what: str) -> None:
        try:
            WebDriverWait(self.driver, timeout_s, poll_frequency=0.1).until(condition)
        except TimeoutException:
            raise AssertionError(
                f"{self.engine}: timed out after {timeout_s} s waiting for {what}; status: {self.status()!r}"
            ) from None


def _xpath_literal(text: str) -> str:
    assert "'" not in text, "labels in these scenarios have no quotes"
    return f"'{text}'"


class Launcher:
    """Launches `engine` on a profile directory, its traffic through the proxy at `proxy_url`."""

    def __init__(self, engine: str, playwright: Playwright, display: str | None, logs: Path) -> None:
        self.engine = engine
        self.playwright = playwright
        self.display = display
        self.logs = logs

    def launch(self, profile: Path, proxy_url: str) -> EngineBrowser:
        if self.engine == "chromium":
            # Playwright sends loopback through a configured proxy too (<-loopback>).
            context = self.playwright.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, proxy={"server": proxy_url}
            )
            return PlaywrightBrowser(self.engine, context)
        if self.engine == "firefox":
            host, port = proxy_url.removeprefix("http://").split(":")
            context = self.playwright.firefox.launch_persistent_context(
                profile,
                channel="moz-firefox",  # WebDriver BiDi: Playwright's patched Firefox is not on this machine
                executable_path=FIREFOX,
                headless=True,
                firefox_user_prefs={
                    "network.proxy.type": 1,  # manual
                    "network.proxy.http": host,
                    "network.proxy.http_port": int(port),
                    "network.proxy.no_proxies_on": "",
                    "network.proxy.allow_hijacking_localhost": True,  # else loopback skips the proxy
                },
            )
            return PlaywrightBrowser(self.engine, context)
        return SeleniumBrowser(self.engine, self._webkit(profile, proxy_url))

    def _webkit(self, profile: Path, proxy_url: str) -> webdriver.WebKitGTK:
        assert self.display is not None, "WebKitGTK needs a display (Xvfb)"
        options = WebKitOptions()
        options.binary_location = SYSTEM_PYTHON
        for argument in (str(WEBKIT_BROWSER), "--automation", f"--data-dir={profile}", f"--proxy={proxy_url}"):
            options.add_argument(argument)
        options.set_capability("browserName", None)  # else "Failed to match capabilities"
        self.logs.mkdir(parents=True, exist_ok=True)
        service = WebKitService(
            executable_path=WEBKIT_DRIVER,
            log_output=str(self.logs / "webkit.log"),  # the driver's and the browser's output
            env={**os.environ, "DISPLAY": self.display},
        )
        return webdriver.WebKitGTK(options=options, service=service)


@contextmanager
def virtual_display() -> Iterator[str]:
    """An Xvfb display of its own (`-displayfd` picks a free number), stopped afterwards."""
    read_end, write_end = os.pipe()
    xvfb = subprocess.Popen(
        [XVFB, "-displayfd", str(write_end), "-nolisten", "tcp", "-screen", "0", "1280x1024x24"],
        pass_fds=(write_end,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    try:
        with os.fdopen(read_end) as reader:
            number = reader.readline().strip()
        assert number, "Xvfb did not start"
        yield f":{number}"
    finally:
        xvfb.terminate()
        xvfb.wait(10)
