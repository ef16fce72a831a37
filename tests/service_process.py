"""The real service as a separate process (`python -m app`, which is what `make run` starts).

Use it where a test needs what only a process gives: SIGKILL, restarts, uvicorn itself.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
READY_POLL_S = 0.05


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM (a graceful shutdown), then SIGKILL if it takes longer than `timeout_s`."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class ServiceProcess:
    """One service with its own data dir and database, startable again after a stop or a kill."""

    def __init__(self, data_dir: Path, *, database_url: str | None = None, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.admin_token = "service-admin-token-0123456789"
        self.log_path = data_dir / "service.log"
        self.env = {
            **os.environ,
            "PORT": str(self.port),
            "VOTE_DATABASE_URL": database_url or f"sqlite+aiosqlite:///{data_dir / 'votes.db'}",
            "VOTE_DATA_DIR": str(data_dir),
            "VOTE_ADMIN_TOKEN": self.admin_token,
            "VOTE_PUBLIC_URL": self.base_url,
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.stdout_start = 0

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.stdout_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app"], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_until_ready()

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flushing; what is on disk is all that survives."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=10, **kwargs)

    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    def _wait_until_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the service exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(READY_POLL_S)  # another process: there is no event to await across it
        raise RuntimeError(f"the service was not ready within {STARTUP_TIMEOUT_S} s:\n{self.log()}")
