"""Starts a server for a benchmark the way a user would: uvicorn (uvloop, httptools), no access log.

The vote service runs as `make run` starts it (`python -m app`, VOTE_WORKERS processes); the
baseline apps run under uvicorn's command line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.service_process import ROOT, free_port, stop_process

STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Server:
    base_url: str
    port: int
    pid: int


@contextmanager
def uvicorn(
    app: str, *, env: dict[str, str], log: Path, workers: int = 1, ready_path: str = "/readyz"
) -> Iterator[Server]:
    """Runs `app` (a factory) until the block ends; its output goes to `log`."""
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", app, "--factory", "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--no-access-log", "--log-level", "warning",
        # Open streams would otherwise hold the shutdown forever.
        "--timeout-graceful-shutdown", "1",
    ]  # fmt: skip
    with _running(command, port, env, log, ready_path) as server:
        yield server


@contextmanager
def vote_service(*, env: dict[str, str], log: Path, workers: int = 1) -> Iterator[Server]:
    """The vote service as `make run` starts it: `python -m app` with VOTE_WORKERS processes."""
    port = free_port()
    env = {**env, "PORT": str(port), "VOTE_WORKERS": str(workers)}
    with _running([sys.executable, "-m", "app"], port, env, log, "/readyz") as server:
        yield server


@contextmanager
def _running(command: list[str], port: int, env: dict[str, str], log: Path, ready_path: str) -> Iterator[Server]:
    with log.open("ab") as out:
        process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", port, process.pid)
    try:
        _wait_until_ready(process, f"{server.base_url}{ready_path}", log)
        yield server
    finally:
        stop_process(process, STOP_TIMEOUT_S)


def _wait_until_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the server did not start:\n{log.read_text()}")
        try:
            if httpx.get(url, timeout=1).is_success:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)  # another process: there is nothing to await
