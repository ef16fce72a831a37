"""Browser tests against the real service: build.py output, `python -m app`, Debian's Chromium.

Fixtures:
- `service`: the vote service shared by the session (fresh data; make your own polls).
- `private_service`: a service of the test's own on a copy of dist/, to change or stop.
- `cdn_service`: a service whose page links its assets on https://cdn.test/.
- pytest-playwright's `page` / `context`: a fresh browser profile per test, at `base_url`.
A failing test's report ends with what its service logged during the test.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service_process import stop_process

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CDN_ORIGIN = "https://cdn.test"
STARTUP_TIMEOUT_S = 30.0
LOG_TAIL_CHARS = 20_000


@dataclass
class Service:
    """A running `python -m app` with its own data directory and database."""

    base_url: str
    admin_token: str
    log_path: Path
    process: subprocess.Popen[bytes]
    dist_dir: Path

    def create_poll(
        self, question: str = "Which colour?", options: tuple[str, ...] = ("Red", "Blue"), **extra: Any
    ) -> dict:
        response = httpx.post(
            f"{self.base_url}/api/v1/polls",
            json={"question": question, "options": list(options), **extra},
            headers={"Authorization": f"Bearer {self.admin_token}"},
        )
        response.raise_for_status()
        return response.json()

    def poll_url(self, poll: dict) -> str:
        return f"{self.base_url}/polls/{poll['id']}"

    def results(self, poll_id: str) -> dict:
        response = httpx.get(f"{self.base_url}/api/v1/polls/{poll_id}/results")
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        """Takes the service away, as a network outage would."""
        stop_process(self.process)

    def log(self, since: int = 0) -> str:
        with self.log_path.open("rb") as log:
            log.seek(since)
            return log.read().decode(errors="replace")

    def log_size(self) -> int:
        return self.log_path.stat().st_size


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_ready(service: Service) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(f"the service exited with {service.process.returncode}:\n{service.log()}")
        try:
            if httpx.get(f"{service.base_url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        # Polling another process: there is no event to await across the process boundary.
        time.sleep(0.05)
    raise RuntimeError(f"the service was not ready within {STARTUP_TIMEOUT_S} s:\n{service.log()}")


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


@contextmanager
def run_service(data: Path, dist_dir: Path) -> Iterator[Service]:
    """`python -m app` on a free port with a fresh database in `data`, stopped on exit."""
    port = _free_port()
    token = secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "PORT": str(port),
        "VOTE_DATABASE_URL": f"sqlite+aiosqlite:///{data / 'votes.db'}",
        "VOTE_DATA_DIR": str(data),
        "VOTE_ADMIN_TOKEN": token,
        "VOTE_DIST_DIR": str(dist_dir),
        "VOTE_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    log_path = data / "service.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    service = Service(f"http://127.0.0.1:{port}", token, log_path, process, dist_dir)
    try:
        _wait_until_ready(service)
        yield service
    finally:
        stop_process(process)


@pytest.fixture(scope="session")
def running_service(tmp_path_factory: pytest.TempPathFactory, dist_dir: Path) -> Iterator[Service]:
    with run_service(tmp_path_factory.mktemp("service"), dist_dir) as service:
        yield service


@pytest.fixture
def private_service(request: pytest.FixtureRequest, tmp_path: Path, dist_dir: Path) -> Iterator[Service]:
    """A service of this test's own, on a copy of dist/ that the test may change (a new release)."""
    own_dist = tmp_path / "dist"
    shutil.copytree(dist_dir, own_dist)
    (tmp_path / "service").mkdir()
    with run_service(tmp_path / "service", own_dist) as service:
        request.node.service_log_start = (service, 0)
        yield service


@pytest.fixture
def cdn_service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Service]:
    """A service of this test's own whose page links its assets on https://cdn.test/.
    Nothing answers there: the test routes that origin to the service's dist/."""
    dist = build_assets(tmp_path / "dist", "--base-url", f"{CDN_ORIGIN}/")
    (tmp_path / "service").mkdir()
    with run_service(tmp_path / "service", dist) as service:
        request.node.service_log_start = (service, 0)
        yield service


@pytest.fixture
def service(request: pytest.FixtureRequest, running_service: Service) -> Service:
    """The running vote service; a failing test's report shows what the service logged during it."""
    request.node.service_log_start = (running_service, running_service.log_size())
    return running_service


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    started = getattr(item, "service_log_start", None)
    if started is not None and report.failed:
        svc, offset = started
        report.sections.append(("service log", svc.log(offset)[-LOG_TAIL_CHARS:]))
    return report


@pytest.fixture(scope="session")
def base_url(running_service: Service) -> str:
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
