"""`python -m app` with VOTE_WORKERS: connections spread over the workers, dead workers replaced."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Voter
from tests.service_process import ServiceProcess

WORKERS = 2
CONNECTIONS = 40
WAIT_S = 20.0


def workers_of(pid: int) -> set[int]:
    """The worker processes a supervisor started (not multiprocessing's own helper process)."""
    try:
        children = [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return set()
    return {child for child in children if b"spawn_main" in _cmdline(child)}


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.05)  # other processes: there is no event to await across them


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ServiceProcess]:
    process = ServiceProcess(tmp_path / "service", env={"VOTE_WORKERS": str(WORKERS)})
    process.start()
    try:
        wait_for(lambda: len(workers_of(process.process.pid)) == WORKERS, f"{WORKERS} workers run")
        yield process
    finally:
        process.stop()


def holders_of_connections(port: int) -> Counter[int]:
    """Which process holds each established connection to `port` (from `ss`)."""
    out = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"], capture_output=True, text=True, check=True
    ).stdout
    return Counter(int(part.split("pid=")[1].split(",")[0]) for part in out.split() if "pid=" in part)


def test_connections_spread_over_all_workers(service):
    sockets = []
    try:
        for _ in range(CONNECTIONS):
            sock = socket.create_connection(("127.0.0.1", service.port))
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            sockets.append(sock)
        holders = holders_of_connections(service.port)
    finally:
        for sock in sockets:
            sock.close()
    assert set(holders) == workers_of(service.process.pid)
    # The kernel hashes each connection to a worker: even within chance (one shared socket put
    # most connections on one worker).
    assert min(holders.values()) >= CONNECTIONS // 4, holders


def test_a_killed_worker_is_replaced_and_no_vote_is_lost(service):
    with service.client() as http:
        poll = http.post("/api/v1/polls", json={"question": "Q?", "options": ["A", "B"], "eligibility": "anyone"},
                         headers=service.admin_headers()).json()  # fmt: skip
        before = [Voter().vote(poll["id"], "a") for _ in range(10)]
        for vote in before:
            response = http.post(f"/api/v1/polls/{poll['id']}/votes", json=vote,
                                 headers={"Idempotency-Key": vote["idempotency_key"]})  # fmt: skip
            assert response.status_code == 201
    workers = workers_of(service.process.pid)
    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: len(workers_of(service.process.pid) - {victim}) == WORKERS, "a new worker replaces it")
    with service.client() as http:
        wait_for(lambda: http.get("/readyz").status_code == 200, "the service answers")
        assert http.get(f"/api/v1/polls/{poll['id']}/results").json()["total"] == len(before)


def test_workers_stop_when_the_supervisor_is_killed(service):
    workers = workers_of(service.process.pid)
    service.kill()
    wait_for(lambda: not any(alive(pid) for pid in workers), "every orphaned worker has stopped")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", service.port), timeout=1).close()
