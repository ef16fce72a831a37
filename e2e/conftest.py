"""Browser tests against the real service: build.py output, `python -m app`, Debian's Chromium.

Fixtures:
- `service`: the vote service shared by the session (fresh data; make your own polls).
- `private_service`: a service of the test's own on a copy of dist/, to change or stop.
- `cdn_service`: a service whose page links its assets on https://cdn.test/.
- pytest-playwright's `page` / `context`: a fresh browser profile per test, at `base_url`.
Each service is a tests/service_process.py `ServiceProcess`, the helper the API tests use too.
A failing test's report ends with what its service logged during the test.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ledger
import pytest

from tests.service_process import ServiceProcess

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CDN_ORIGIN = "https://cdn.test"
LOG_TAIL_CHARS = 20_000


def build_assets(out: Path, *args: str) -> Path:
    """Runs build.py as `make build` would, into `out`."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "build.py"), "--out", str(out), *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"build.py failed:\n{result.stdout}\n{result.stderr}")
    return out


@pytest.fixture(scope="session")
def dist_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh build of the page's assets."""
    return build_assets(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="session")
def running_service(tmp_path_factory: pytest.TempPathFactory, dist_dir: Path) -> Iterator[ServiceProcess]:
    """The one service of the session, behind `service` and `base_url`: use those instead."""
    with ServiceProcess(tmp_path_factory.mktemp("service"), dist_dir=dist_dir) as service:
        yield service


@pytest.fixture
def private_service(request: pytest.FixtureRequest, tmp_path: Path, dist_dir: Path) -> Iterator[ServiceProcess]:
    """A service of this test's own, on a copy of dist/ that the test may change (a new release)."""
    own_dist = tmp_path / "dist"
    shutil.copytree(dist_dir, own_dist)
    with ServiceProcess(tmp_path / "service", dist_dir=own_dist) as service:
        request.node.service_log_start = (service, 0)
        yield service


@pytest.fixture
def cdn_service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServiceProcess]:
    """A service of this test's own whose page links its assets on https://cdn.test/.
    Nothing answers there: the test routes that origin to the service's dist/."""
    dist = build_assets(tmp_path / "dist", "--base-url", f"{CDN_ORIGIN}/")
    with ServiceProcess(tmp_path / "service", dist_dir=dist) as service:
        request.node.service_log_start = (service, 0)
        yield service


@pytest.fixture
def service(request: pytest.FixtureRequest, running_service: ServiceProcess) -> ServiceProcess:
    """The running vote service; a failing test's report shows what the service logged during it."""
    request.node.service_log_start = (running_service, running_service.log_size())
    return running_service


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Adds the service's log to a failing test's report. A fixture opts in by setting
    `service_log_start = (service, log offset)` on the test (e2e/loss's `lab` does too)."""
    report = yield
    started = getattr(item, "service_log_start", None)
    if started is not None and report.failed:
        svc, offset = started
        report.sections.append(("service log", svc.log(offset)[-LOG_TAIL_CHARS:]))
    return report


@pytest.fixture(scope="session")
def base_url(running_service: ServiceProcess) -> str:
    """pytest-playwright's base URL (replaces pytest-base-url's fixture): the running service."""
    return running_service.base_url


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    # Playwright cannot download its own browser here: drive Debian's Chromium.
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A lost or duplicated vote in any engine fails the run (e2e/ledger.py)."""
    if not ledger.proved_zero_loss(session.config):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """`chromium: votes cast N, counted N, duplicates 0, lost 0`, firefox, webkit, then all of them."""
    for line in ledger.summary_lines(config):
        terminalreporter.write_line(line)
