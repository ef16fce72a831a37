"""Live results outlive a Redis outage: once Redis is back, streams resume, with the counts they
missed. The Redis server here is the test's own, so that stopping it disturbs nothing else."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import Voter, send_vote
from tests.private_redis import PrivateRedis
from tests.service_process import ServiceProcess
from tests.sse import counts, open_stream

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs Debian's redis-server")


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
