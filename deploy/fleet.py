"""`make fleet NODES=3`: N nodes of the service on PostgreSQL and Redis behind HAProxy, here.

    python -m deploy.fleet --nodes 3 [--port 8080] [--database-url URL] [--redis-url URL]

Each node is its own `python -m app` (own port, own data dir under a temporary directory); all
share one PostgreSQL database made for this run (dropped when it ends), one Redis (channels
under a prefix of this run's own) and one set of keys, sealed in that database under one
key-encryption key file. HAProxy from Debian (deploy/haproxy.cfg) balances them and takes a node
out while its /readyz fails. Ctrl-C stops everything.

The e2e fleet tests (e2e/fleet/) and the fleet benchmark (bench/fleet.py) use the same `Fleet`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
HAPROXY = Path("/usr/sbin/haproxy")
CONFIG_TEMPLATE = Path(__file__).with_name("haproxy.cfg")
ERROR_FILES = Path(__file__).with_name("haproxy-errors")
DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
T = TypeVar("T")
POLL_S = 0.05  # other processes: there is no event to await across them


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
    """Polls `condition()` until it is true; raises TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout_s} s")
        time.sleep(POLL_S)


def is_ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


# --- keys ---------------------------------------------------------------------------------------


def give_nodes_the_keys(workdir: Path, nodes: list[Node]) -> None:
    """Every node signs with the same keys, kept sealed in the fleet's database under one
    key-encryption key that every node is given as a file (docs/deploy.md, "Keys for a fleet"):
    the first node to start stores them, the others read them, and rotations reach them all."""
    kek = workdir / "key-encryption-key"
    fd = os.open(kek, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(base64.b64encode(secrets.token_bytes(32)) + b"\n")
    for node in nodes:
        node.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        node.env["VOTE_KEY_ENCRYPTION_KEY_FILE"] = str(kek)


# --- the database -------------------------------------------------------------------------------


def run_async(function: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """`asyncio.run(function())` in a thread of its own: the caller may already run an event loop
    (Playwright's sync API does, in the browser tests)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(function())).result()


def _admin_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def create_database(server_url: str, name: str) -> str:
    """A new, empty database `name` on the server of `server_url`; returns its URL."""
    _admin_sql(server_url, f'CREATE DATABASE "{name}"')
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    _admin_sql(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _admin_sql(server_url: str, sql: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(_admin_dsn(server_url))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    run_async(run)


def prepare_database(url: str) -> str:
    """Migrates the fleet's database once, before any node starts, and makes the demo poll, so
    that nodes starting together neither race nor make one each. Returns the demo poll's id."""
    from app.polls.store import ensure_demo_poll
    from app.storage.db import Database
    from app.storage.migrate import upgrade

    async def run() -> str:
        db = Database(url)
        try:
            await upgrade(db)
            return await ensure_demo_poll(db)
        finally:
            await db.dispose()

    return run_async(run)


# --- processes ----------------------------------------------------------------------------------


@dataclass
class Node:
    """One node: `python -m app` on its own port and data dir; startable again after a kill."""

    name: str
    data_dir: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "node.log"

    def start(self) -> None:
        """Starts the node; `wait_ready()` waits until it answers /readyz."""
        env = {**os.environ, **self.env, "PORT": str(self.port), "VOTE_DATA_DIR": str(self.data_dir)}
        with self.log_path.open("ab") as log:  # appends: a restarted node's log keeps what came before
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )

    def wait_ready(self) -> None:
        def ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log()}")
            return is_ready(self.url)

        wait_until(ready, f"{self.name} ready at {self.url}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flushing; what PostgreSQL committed is all that survives."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Balancer:
    """Debian's HAProxy running deploy/haproxy.cfg, filled in for these nodes."""

    def __init__(self, run_dir: Path, nodes: list[Node], port: int) -> None:
        self.run_dir = run_dir
        self.nodes = nodes
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.run_dir / "haproxy.log"

    def config(self) -> str:
        servers = "\n".join(f"    server {node.name} 127.0.0.1:{node.port}" for node in self.nodes)
        filled = {"{{bind}}": f"127.0.0.1:{self.port}", "{{servers}}": servers, "{{errors}}": str(ERROR_FILES),
                  "{{run}}": str(self.run_dir)}  # fmt: skip
        text = CONFIG_TEMPLATE.read_text()
        for placeholder, value in filled.items():
            text = text.replace(placeholder, value)
        return text

    def start(self) -> None:
        if not HAPROXY.exists():
            raise RuntimeError(f"{HAPROXY} is missing: `make haproxy` installs Debian's haproxy")
        path = self.run_dir / "haproxy.cfg"
        path.write_text(self.config())
        with self.log_path.open("ab") as log:
            # -db: in the foreground, as a child of this process that ends with it.
            self.process = subprocess.Popen(
                [str(HAPROXY), "-db", "-f", str(path)], stdout=log, stderr=subprocess.STDOUT
            )

        def up() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"haproxy exited with {self.process.returncode}:\n{self.log_path.read_text()}")
            return is_ready(self.url)

        wait_until(up, f"haproxy at {self.url} sending to a ready node")

    def command(self, line: str) -> str:
        """A runtime API command, e.g. `set server nodes/node1 state drain`."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(self.run_dir / "haproxy.sock"))
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- the fleet ----------------------------------------------------------------------------------


@dataclass
class FleetSpec:
    nodes: int = 3
    database_url: str = DEFAULT_DATABASE_URL
    """A PostgreSQL server (any database on it): the fleet makes a database of its own there."""
    redis_url: str = DEFAULT_REDIS_URL
    port: int = 0
    """The balancer's port; 0 for a free one."""
    dist_dir: Path = ROOT / "dist"
    env: dict[str, str] = field(default_factory=dict)
    """More VOTE_* settings for every node."""
    keep_database: bool = False


class Fleet:
    """`with Fleet(spec, workdir) as fleet:` starts the nodes and the balancer, then stops them
    and drops the fleet's database."""

    def __init__(self, spec: FleetSpec, workdir: Path) -> None:
        self.spec = spec
        self.workdir = workdir
        self.run_id = secrets.token_hex(4)
        self.database_name = f"vote_fleet_{self.run_id}"
        self.database_url = ""
        self.admin_token = spec.env.get("VOTE_ADMIN_TOKEN") or secrets.token_urlsafe(24)
        self.demo_poll_id = ""
        port = spec.port or free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {
            "VOTE_REDIS_URL": spec.redis_url,
            # Channels and shared limits of this run apart from anything else on that Redis.
            "VOTE_REDIS_CHANNEL_PREFIX": f"fleet-{self.run_id}",
            # Poll links, and the ballot log's origin and key name, are the balancer's on every node.
            "VOTE_PUBLIC_URL": self.url,
            "VOTE_CLIENT_ADDRESS_HEADER": "X-Real-IP",
            "VOTE_DIST_DIR": str(spec.dist_dir),
            **spec.env,
            "VOTE_ADMIN_TOKEN": self.admin_token,
        }
        self.nodes = [Node(f"node{i}", workdir / f"node{i}", dict(env)) for i in range(1, spec.nodes + 1)]
        self.balancer = Balancer(workdir, self.nodes, port)

    def __enter__(self) -> Fleet:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.database_url = create_database(self.spec.database_url, self.database_name)
        try:
            self.demo_poll_id = prepare_database(self.database_url)
            give_nodes_the_keys(self.workdir, self.nodes)
            for node in self.nodes:
                node.env["VOTE_DATABASE_URL"] = self.database_url
                node.start()
            for node in self.nodes:
                node.wait_ready()
            self.balancer.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        try:
            self.balancer.stop()
            for node in self.nodes:
                node.stop()
        finally:
            if self.database_url and not self.spec.keep_database:
                drop_database(self.spec.database_url, self.database_name)

    def node(self, name: str) -> Node:
        return next(node for node in self.nodes if node.name == name)

    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}


# --- `make fleet` -------------------------------------------------------------------------------


@contextmanager
def _workdir(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="vote-fleet-"))
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.fleet", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--nodes", type=int, default=int(os.environ.get("NODES", "3")))
    parser.add_argument("--port", type=int, default=int(os.environ.get("FLEET_PORT", "8080")),
                        help="the balancer's port (0: a free one)")  # fmt: skip
    parser.add_argument("--database-url", default=os.environ.get("VOTE_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--redis-url", default=os.environ.get("VOTE_REDIS_URL", DEFAULT_REDIS_URL))
    parser.add_argument("--keep", action="store_true", help="keep the database and the nodes' directories")
    args = parser.parse_args()
    if not 1 <= args.nodes <= 32:
        parser.error("--nodes: 1 to 32")
    if not args.database_url.startswith("postgresql+asyncpg://"):
        parser.error("--database-url: a fleet shares one PostgreSQL (postgresql+asyncpg://…)")
    # SIGTERM ends it as Ctrl-C does: the nodes, HAProxy and the database go with it.
    signal.signal(signal.SIGTERM, _interrupt)
    spec = FleetSpec(nodes=args.nodes, database_url=args.database_url, redis_url=args.redis_url, port=args.port,
                     keep_database=args.keep)  # fmt: skip
    with _workdir(args.keep) as workdir, Fleet(spec, workdir) as fleet:
        for node in fleet.nodes:
            print(f"{node.name}: {node.url} (data {node.data_dir}, log {node.log_path})")
        print(f"database: {make_url(fleet.database_url).render_as_string(hide_password=True)}")
        print(f"admin token: {fleet.admin_token}")
        print(f"Balancer: {fleet.url}")
        print(f"Demo poll: {fleet.url}/polls/{fleet.demo_poll_id}", flush=True)
        print("Ctrl-C stops the fleet.", flush=True)
        try:
            _watch(fleet)
        except KeyboardInterrupt:
            print("\nstopping the fleet…", flush=True)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _watch(fleet: Fleet) -> None:
    """Says when a process of the fleet ends by itself; the others go on."""
    told: set[str] = set()
    while True:
        for node in fleet.nodes:
            if node.process is not None and node.process.poll() is not None and node.name not in told:
                told.add(node.name)
                print(f"{node.name} exited with {node.process.returncode}; see {node.log_path}", flush=True)
        time.sleep(1)


if __name__ == "__main__":
    main()
