"""Starts a server for a benchmark the way a user would: uvicorn (uvloop, httptools), no access log.

The vote service runs as `make run` starts it (`python -m app`, VOTE_WORKERS processes) from a
source tree: this one, or another checkout of the project (`python -m bench --against REF`); the
baseline apps run under uvicorn's command line, from this tree.
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
def granian(
    app: str, *, env: dict[str, str], log: Path, workers: int = 1, ready_path: str = "/readyz"
) -> Iterator[Server]:
    """Runs `app` (a factory) under Granian's ASGI interface (Rust HTTP, uvloop), until the block ends."""
    port = free_port()
    command = [
        sys.executable, "-m", "granian", app, "--factory", "--interface", "asgi", "--host", "127.0.0.1",
        "--port", str(port), "--workers", str(workers), "--loop", "uvloop", "--no-ws", "--no-access-log",
        "--log-level", "warning", "--workers-kill-timeout", "1", "--http", "1",
    ]  # fmt: skip
    with _running(command, port, env, log, ready_path) as server:
        yield server


@contextmanager
def vote_service(*, env: dict[str, str], log: Path, workers: int = 1, tree: Path = ROOT) -> Iterator[Server]:
    """The vote service as `make run` starts it: `python -m app` with VOTE_WORKERS processes, from `tree`."""
    port = free_port()
    env = {**env, **tree_env(tree), "PORT": str(port), "VOTE_WORKERS": str(workers)}
    with _running([sys.executable, "-m", "app"], port, env, log, "/readyz", cwd=tree) as server:
        yield server


def tree_env(tree: Path) -> dict[str, str]:
    """What makes `python -m app`, run with cwd=`tree`, import `tree`'s code and nothing else.

    `-m` puts the cwd first on sys.path, ahead of the venv's editable install of this tree (a
    finder that comes after the path). The helper processes (`python -m app.votes.helper_worker`) and
    the spawned workers inherit the cwd; PYTHONPATH says it again for any child that does not.
    """
    inherited = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": os.pathsep.join([str(tree), inherited] if inherited else [str(tree)])}


@contextmanager
def _running(
    command: list[str], port: int, env: dict[str, str], log: Path, ready_path: str, cwd: Path = ROOT
) -> Iterator[Server]:
    with log.open("ab") as out:
        process = subprocess.Popen(command, cwd=cwd, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
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
