"""The zero-loss scenarios in every engine (issue 16).

Fixtures:
- `engine`: "chromium", "firefox" or "webkit"; a scenario that takes it (or `engine_lab`) runs once per engine.
- `engine_lab`: a service of the test's own (free port, kept across its restarts: storage is per
  origin, port included) and `new_device()` to launch the engine on a profile of its own, behind
  a fault proxy of its own. Afterwards every browser is closed, every proxy and the service stopped.
Each proof adds to its engine's tally (e2e/ledger.py); the run ends with one line per engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import ledger
import pytest
from playwright.sync_api import Playwright

from tests.service_process import ServiceProcess

from .drivers import ENGINES, Launcher, missing, virtual_display
from .lab import EngineLab

LOG_TAIL_CHARS = 20_000


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    lacking = missing(request.param)
    if lacking:  # fail, not skip: "zero loss in every engine" must not pass by running fewer
        pytest.fail(f"{request.param} cannot run here: missing {', '.join(lacking)}. `make browsers` installs them.")
    return request.param


@pytest.fixture(scope="session")
def x_display() -> Iterator[str]:
    """One Xvfb display for the session's WebKitGTK browsers."""
    with virtual_display() as display:
        yield display


@pytest.fixture
def engine_lab(
    request: pytest.FixtureRequest, engine: str, tmp_path: Path, dist_dir: Path, playwright: Playwright
) -> Iterator[EngineLab]:
    """A service, and browsers of `engine` to reach it through fault proxies; see the module docstring."""
    display = request.getfixturevalue("x_display") if engine == "webkit" else None
    service = ServiceProcess(tmp_path / "service", dist_dir=dist_dir)
    request.node.service_log_start = (service, 0)  # e2e/conftest.py shows it if the test fails
    service.start()
    lab = EngineLab(
        engine=engine,
        service=service,
        launcher=Launcher(engine, playwright, display, tmp_path / "logs"),
        workdir=tmp_path,
        ledger=ledger.tally_for(request.config, engine),
    )
    try:
        yield lab
    finally:
        try:
            lab.close_all()
        finally:
            service.stop()
        browser_log = tmp_path / "logs" / "webkit.log"
        if browser_log.exists():
            request.node.browser_log = browser_log


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    """A failing WebKitGTK scenario's report ends with what the driver and the browser printed."""
    report = yield
    browser_log = getattr(item, "browser_log", None)
    if browser_log is not None and report.failed:
        report.sections.append(("webkit log", browser_log.read_text(errors="replace")[-LOG_TAIL_CHARS:]))
    return report
