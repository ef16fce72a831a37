"""Live results outlive a Redis outage: once Redis is back, streams resume, with the counts they
missed. The Redis server here is the test's own, so that stopping it disturbs nothing else."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.helpers import Voter, send_vote
from tests.service_process import ServiceProcess, free_port, stop_process
from tests.sse import counts, open_stream

START_TIMEOUT_S = 10.0

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs Debian's redis-server")


class PrivateRedis:
    """A redis-server on a port of its own, that a test may kill and start again."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(self.directory)],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        client = Redis(port=self.port, socket_timeout=1)
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while True:
                try:
                    client.ping()
                    return
                except RedisConnectionError:
                    if time.monotonic() > deadline or self.process.poll() is not None:
                        raise
                time.sleep(0.02)  # another process: there is nothing to await
        finally:
            client.close()

    def kill(self) -> None:
        """As a crash or a lost network would: no goodbye to the clients."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def service(tmp_path: Path, private_redis: PrivateRedis) -> Iterator[ServiceProcess]:
    process = ServiceProcess(tmp_path / "service", env={"VOTE_REDIS_URL": private_redis.url})
    process.start()
    try:
        yield process
    finally:
        process.stop()


async def test_streams_resume_with_the_missed_counts_once_redis_is_back(service, private_redis):
    async with httpx.AsyncClient(base_url=service.base_url, timeout=10) as http:
        spec = {"question": "Q?", "options": ["A", "B"], "eligibility": "anyone"}
        poll = (await http.post("/api/v1/polls", json=spec, headers=service.admin_headers())).json()
        async with open_stream(http, poll["id"]) as stream:
            assert (await stream.next_results()).id == "0"

            private_redis.kill()
            # Votes never depend on Redis; this one's snapshot cannot be published.
            assert (await send_vote(http, Voter().vote(poll["id"], "a"))).status_code == 201
            private_redis.start()

            # The worker resubscribes and reads again what it missed: no vote needed to catch up.
            assert counts((await stream.results_until(1))[-1].json()) == {"a": 1, "b": 0}
            # And the subscription works again: the next vote arrives through Redis.
            assert (await send_vote(http, Voter().vote(poll["id"], "b"))).status_code == 201
            assert counts((await stream.results_until(2))[-1].json()) == {"a": 1, "b": 1}
