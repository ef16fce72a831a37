"""The real service as a separate process (`python -m app`, which is what `make run` starts).

Use it where a test needs what only a process gives: SIGKILL, restarts, uvicorn itself, a browser.
The API tests and the browser tests (e2e/) share it.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import sqlite3
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
    """One service with its own data dir and database, startable again after a stop or a kill.

    `with ServiceProcess(...) as service:` starts it and stops it on exit. `dist_dir` serves the
    page's assets from a build of the test's own. The admin token is random unless one is given
    ("" starts the service without one, as a first `make run` does).
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        dist_dir: Path | None = None,
        admin_token: str | None = None,
        database_url: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.dist_dir = dist_dir
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.admin_token = secrets.token_urlsafe(24) if admin_token is None else admin_token
        self.log_path = data_dir / "service.log"
        self.env = {
            **os.environ,
            "PORT": str(self.port),
            "VOTE_DATABASE_URL": database_url or f"sqlite+aiosqlite:///{data_dir / 'votes.db'}",
            "VOTE_DATA_DIR": str(data_dir),
            "VOTE_ADMIN_TOKEN": self.admin_token,
            "VOTE_PUBLIC_URL": self.base_url,
            **({"VOTE_DIST_DIR": str(dist_dir)} if dist_dir is not None else {}),
            **(env or {}),
        }
        if not self.admin_token:  # unset, not empty: an empty VOTE_ADMIN_TOKEN stops the start
            self.env.pop("VOTE_ADMIN_TOKEN")
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ServiceProcess:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Starts the service (again: same port, same data) and returns once it is ready."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Appends: the log of a restarted service still shows what came before.
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app"], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()  # one that never got ready must not outlive the test
            raise

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flushing; what is on disk is all that survives."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        """A graceful shutdown. To a browser the service is then gone, as in a network outage."""
        if self.process is not None:
            stop_process(self.process)

    def log(self, since: int = 0) -> str:
        """What the service printed, from byte `since` (a `log_size()` taken earlier) on."""
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(since)
            return log.read().decode(errors="replace")

    def log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=10, **kwargs)

    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    def create_poll(
        self, question: str = "Which colour?", options: tuple[str, ...] = ("Red", "Blue"), **extra: Any
    ) -> dict:
        with self.client() as http:
            response = http.post(
                "/api/v1/polls",
                json={"question": question, "options": list(options), "eligibility": "anyone", **extra},
                headers=self.admin_headers(),
            )
        response.raise_for_status()
        return response.json()

    def create_closed_poll(self, question: str = "Which colour?", options: tuple[str, ...] = ("Red", "Blue")) -> dict:
        """A poll that has just closed. A poll cannot be created closed: this one is created open,
        then closed in its SQLite database before any vote brings it into the service's memory."""
        poll = self.create_poll(question, options, closes_at=int(time.time() * 1000) + 60_000)
        poll["closes_at"] = int(time.time() * 1000) - 1
        database = self.env["VOTE_DATABASE_URL"].removeprefix("sqlite+aiosqlite:///")
        with sqlite3.connect(database) as db:
            db.execute("UPDATE polls SET closes_at = ? WHERE id = ?", (poll["closes_at"], poll["id"]))
        return poll

    def close_poll(self, poll: dict) -> dict:
        """Closes the poll now, as its organiser would (POST /api/v1/polls/{poll_id}/close)."""
        with self.client() as http:
            response = http.post(f"/api/v1/polls/{poll['id']}/close", headers=self.admin_headers())
        response.raise_for_status()
        return response.json()

    def poll_url(self, poll: dict) -> str:
        return f"{self.base_url}/polls/{poll['id']}"

    def results(self, poll_id: str) -> dict:
        with self.client() as http:
            response = http.get(f"/api/v1/polls/{poll_id}/results")
        response.raise_for_status()
        return response.json()

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
