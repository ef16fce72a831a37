"""Nodes of a fleet share their rate limits and their news of polls through Redis, and go on taking
votes without it: a Redis of the test's own is killed and started again under two nodes."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from app.core.settings import Settings
from app.factory import VoteServicePlugin
from tests.api.test_unknown_polls import add_poll_row
from tests.helpers import Voter, create_poll, send_vote
from tests.lifespan import serve
from tests.private_redis import PrivateRedis

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
def fleet(settings: Settings, private_redis: PrivateRedis) -> Settings:
    """Settings for nodes of one fleet: one database, one Redis, at most 2 vote requests a minute per poll."""
    return dataclasses.replace(settings, redis_url=private_redis.url, rate_limit_per_poll=2)


async def until(condition: Callable[[], Awaitable[bool]], timeout_s: float = 10.0) -> None:
    """Awaits what a node's own reconnection makes true (its retries back off up to 2 s)."""
    async with asyncio.timeout(timeout_s):
        while not await condition():  # noqa: ASYNC110 (no event to await)
            await asyncio.sleep(0.05)


async def statuses(node: httpx.AsyncClient, poll: dict, count: int) -> list[int]:
    votes = [Voter().vote(poll["id"], poll["options"][0]["id"]) for _ in range(count)]
    return [(await send_vote(node, vote)).status_code for vote in votes]


def shared_limits_reachable(node: httpx.AsyncClient) -> Callable[[], Awaitable[bool]]:
    limits = node.app.plugins.get(VoteServicePlugin).rate_limits  # type: ignore[attr-defined]
    return limits.limiter.storage.check


async def test_limits_hold_per_node_while_redis_is_down_and_across_nodes_once_it_is_back(fleet, private_redis):
    async with serve(fleet) as a, serve(fleet) as b:
        during = await create_poll(a, question="Down?", options=["Yes", "No"])
        private_redis.kill()
        # Each node counts alone: the limit holds on each, looser by the number of nodes, and no vote fails.
        assert await statuses(a, during, 3) == [201, 201, 429]
        assert await statuses(b, during, 1) == [201]

        private_redis.start()
        await until(shared_limits_reachable(a))
        await until(shared_limits_reachable(b))
        after = await create_poll(a, question="Back?", options=["Yes", "No"])
        assert await statuses(a, after, 1) + await statuses(b, after, 2) == [201, 201, 429]


async def test_a_poll_created_while_redis_is_down_takes_votes_on_every_node_once_it_is_back(fleet, private_redis):
    poll_id = "made-during-outage"
    async with serve(fleet) as a, serve(fleet) as b:
        vote = Voter().vote(poll_id, "yes")
        assert (await send_vote(b, vote)).status_code == 404  # b now remembers the id as unknown
        private_redis.kill()
        await add_poll_row(a.app.state.db, poll_id)  # type: ignore[attr-defined]
        await a.app.state.poll_news.announce(poll_id)  # type: ignore[attr-defined]  # lost: Redis is down
        assert (await send_vote(a, Voter().vote(poll_id, "yes"))).status_code == 201  # votes need no Redis
        assert b.app.state.votes.polls.known_unknown(poll_id)  # type: ignore[attr-defined]

        private_redis.start()

        async def b_forgot() -> bool:
            return not b.app.state.votes.polls.known_unknown(poll_id)  # type: ignore[attr-defined]

        await until(b_forgot)  # within the reconnection, not the cache's 30 s time-to-live
        assert (await send_vote(b, vote)).status_code == 201
