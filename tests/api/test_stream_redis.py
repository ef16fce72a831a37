"""Live results across uvicorn workers through real Redis: a vote accepted by one worker reaches
streams served by every worker, and each worker subscribes once per poll, not once per stream."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from tests.helpers import Voter, send_vote
from tests.service_process import ServiceProcess
from tests.sse import EventStream, counts, open_stream

REDIS_URL_ENV = "VOTE_TEST_REDIS_URL"
WORKERS = 2
MAX_STREAMS = 64  # connections opened until both workers serve some; the kernel picks the worker

pytestmark = pytest.mark.skipif(
    not os.environ.get(REDIS_URL_ENV), reason=f"Redis fan-out tests need {REDIS_URL_ENV} (.ci/run sets it)"
)


@pytest.fixture
def prefix() -> str:
    """A channel prefix of this test's own, so that parallel runs on one Redis never mix."""
    return f"vote-test-{secrets.token_hex(6)}"


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(os.environ[REDIS_URL_ENV])
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def workers(tmp_path: Path, prefix: str) -> Iterator[ServiceProcess]:
    """The service as the README runs it on a node: `python -m app` with several workers."""
    env = {
        "VOTE_REDIS_URL": os.environ[REDIS_URL_ENV],
        "VOTE_REDIS_CHANNEL_PREFIX": prefix,
        "VOTE_WORKERS": str(WORKERS),
    }
    process = ServiceProcess(tmp_path / "service", env=env)
    process.start()
    try:
        yield process
    finally:
        process.stop()


def server_pid_of(connection_port: int, server: ServiceProcess) -> int:
    """The worker process holding the server side of the loopback connection from `connection_port`."""
    assert server.process is not None
    inode = _server_socket_inode(server.port, connection_port)
    for pid in _children(server.process.pid):
        fd_dir = Path(f"/proc/{pid}/fd")
        for fd in fd_dir.iterdir():
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue  # closed meanwhile
    raise AssertionError(f"no worker holds the connection from port {connection_port}")


def _server_socket_inode(server_port: int, client_port: int) -> str:
    local, remote = f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[2] == remote:
            return fields[9]
    raise AssertionError(f"no server socket for the connection from port {client_port}")


def _children(parent: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            children.append(int(stat.parent.name))
    return children


async def test_vote_on_one_worker_reaches_streams_on_every_worker(workers, redis, prefix):
    async with httpx.AsyncClient(base_url=workers.base_url, timeout=10) as admin:
        spec = {"question": "Q?", "options": ["A", "B"], "eligibility": "anyone"}
        poll = (await admin.post("/api/v1/polls", json=spec, headers=workers.admin_headers())).json()
    async with AsyncExitStack() as stack:
        by_worker: dict[int, list[EventStream]] = {}
        while len(by_worker) < WORKERS and sum(map(len, by_worker.values())) < MAX_STREAMS:
            # A client of its own per stream: a new connection each time, for the kernel to place.
            http = await stack.enter_async_context(httpx.AsyncClient(base_url=workers.base_url, timeout=10))
            stream = await stack.enter_async_context(open_stream(http, poll["id"]))
            assert (await stream.next_results()).id == "0"
            by_worker.setdefault(server_pid_of(stream.client_port, workers), []).append(stream)
        assert len(by_worker) == WORKERS, f"all {MAX_STREAMS} streams landed on one worker"
        streams = [s for group in by_worker.values() for s in group]

        # One subscription per worker for this poll, however many streams each serves.
        channel = f"{prefix}:results:{poll['id']}"
        assert await redis.pubsub_numsub(channel) == [(channel.encode(), WORKERS)]

        async with httpx.AsyncClient(base_url=workers.base_url, timeout=10) as voter_http:
            assert (await send_vote(voter_http, Voter().vote(poll["id"], "b"))).status_code == 201
        # Streams on both workers exist, so at least one is served by a worker that did not take the vote.
        for stream in streams:
            update = (await stream.results_until(1))[-1]
            assert update.id == "1"
            assert counts(update.json()) == {"a": 0, "b": 1}
