"""A PostgreSQL cluster and a Redis of one run's own, on free ports in temporary directories.

The fleet tests (e2e/fleet/) restart these, as an operator's `pg_ctlcluster … restart` or
`systemctl restart redis` would, where restarting the machine's shared PostgreSQL (5432) and
Redis (6379) would break the other suites using them; the fleet benchmark (bench/fleet.py)
measures what each of them spends, with nothing else on them.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from deploy.fleet import free_port, wait_until

STOP_TIMEOUT_S = 30


def postgres_bin() -> Path | None:
    """Debian's server programs (initdb, pg_ctl), newest version first; None when not installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]), reverse=True)
    return Path(found[0]).parent if found else None


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


class OwnPostgres:
    """`initdb` with trust authentication for local connections, then `pg_ctl start/stop`.

    PostgreSQL refuses to run as root: as root, its programs run as the `postgres` user, in a
    directory that user owns."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="vote-fleet-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.as_user: str | None = "postgres" if os.geteuid() == 0 else None
        if self.as_user is not None:
            account = pwd.getpwnam(self.as_user)
            os.chown(self.root, account.pw_uid, account.pw_gid)

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def pid(self) -> int:
        """The postmaster's process id (its first line of postmaster.pid)."""
        return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])

    def init(self) -> None:
        # --no-sync: only the empty cluster's first files go unsynced; the server itself fsyncs.
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self) -> None:
        """A fast shutdown: open connections are ended, as in a restart for maintenance."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", str(STOP_TIMEOUT_S), "stop")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, program: str, *args: str, check: bool = True) -> None:
        command = [str(self.bin_dir / program), *args]
        if self.as_user is not None:
            command = ["runuser", "-u", self.as_user, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if check and result.returncode != 0:
            raise RuntimeError(f"{program} failed ({result.returncode}): {result.stdout}\n{result.stderr}")


class OwnRedis:
    """`redis-server` on a free port, with no persistence: a restart empties it, the hardest case."""

    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="vote-fleet-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.root),
                   "--save", "", "--appendonly", "no"]  # fmt: skip
        with (self.root / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: _listening(self.port), f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(STOP_TIMEOUT_S)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
