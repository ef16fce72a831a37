"""The zero-loss scenarios (issue 4): real Chromium, the real worker, a real service process.

Fixtures:
- `lab`: a service of the test's own (free port, own SQLite database and keys in tmp_path),
  started; browser profiles opened through it record a Playwright trace. After the test every
  browser it opened is closed and the service stopped: no process is left behind. A failing
  test leaves its traces and the service's log in test-results/<test id>/.

Every scenario's `Lab.prove_zero_loss` adds to Chromium's tally (e2e/ledger.py); the run ends
with `chromium: votes cast N, counted N, duplicates 0, lost 0`, a line per other engine that ran,
and the overall line. A lost or duplicated vote fails the run (e2e/conftest.py).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ledger
import pytest
from playwright.sync_api import Browser, BrowserType

from tests.service_process import ServiceProcess

from .lab import Lab, Tally

FAILED = pytest.StashKey[bool]()


def _ledger(config: pytest.Config) -> Tally:
    return ledger.tally_for(config, "chromium")


@pytest.fixture
def lab(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    dist_dir: Path,
    browser: Browser,
    browser_type: BrowserType,
    browser_type_launch_args: dict,
    output_path: str,
) -> Iterator[Lab]:
    """A service of this test's own and the browser to reach it; see the module docstring."""
    service = ServiceProcess(tmp_path / "service", dist_dir=dist_dir)
    request.node.service_log_start = (service, 0)  # e2e/conftest.py shows it if the test fails
    service.start()
    world = Lab(
        service=service,
        browser=browser,
        browser_type=browser_type,
        launch_args=browser_type_launch_args,
        workdir=tmp_path,
        traces=tmp_path / "traces",
        ledger=_ledger(request.config),
    )
    try:
        yield world
    finally:
        failed = request.node.stash.get(FAILED, False)
        try:
            world.close_all(keep_traces=failed)
        finally:
            service.stop()
            if failed:
                _keep_artifacts(world, Path(output_path))
        assert service.process is not None
        assert service.process.poll() is not None, "the service is still running"


def _keep_artifacts(world: Lab, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(world.service.log_path, folder / "service.log")
    if world.traces.exists():
        for trace in world.traces.iterdir():
            shutil.copyfile(trace, folder / trace.name)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        item.stash[FAILED] = True  # the lab's teardown keeps the artifacts then
    return report
