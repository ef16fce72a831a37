"""Votes for unknown polls cost no database read after the first (app/polls/cache.py), and a poll
created later under such an id is announced to every worker, which then reads it again."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import insert

from app.core.settings import Settings
from app.storage.db import Database
from app.storage.schema import options, polls
from tests.helpers import ADMIN_TOKEN, Voter, create_poll, database_reads, send_vote
from tests.lifespan import serve

REDIS_URL_ENV = "VOTE_TEST_REDIS_URL"


async def add_poll_row(db: Database, poll_id: str) -> None:
    """A poll written by someone else (another worker or node), under an id chosen by the test."""
    async with db.write() as conn:
        await conn.execute(
            insert(polls).values(id=poll_id, question="Late?", created_at=int(time.time() * 1000), late_grace_seconds=0)
        )
        await conn.execute(insert(options).values(poll_id=poll_id, id="yes", label="Yes", position=0))


def redis_settings(tmp_path: Path) -> Settings:
    """Workers of one service on one database, telling each other through Redis."""
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'votes.db'}",
        data_dir=tmp_path / "data",
        admin_token=ADMIN_TOKEN,
        redis_url=os.environ[REDIS_URL_ENV],
        redis_channel_prefix=f"vote-test-{secrets.token_hex(6)}",
    )


async def next_message(pubsub: Any) -> bytes:
    async with asyncio.timeout(10):
        while (message := await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)) is None:
            pass
    return message["data"]


async def test_votes_for_an_unknown_poll_read_the_database_once(client):
    with database_reads(client.app.state.db) as reads:
        for _ in range(5):
            response = await send_vote(client, Voter().vote("no-such-poll", "yes"))
            assert response.json()["type"] == "/problems/poll-not-found"
    assert len(reads) == 1


async def test_a_batch_for_unknown_polls_reads_the_database_once(client, poll):
    votes = [Voter().vote(f"unknown-{i % 10}", "yes") for i in range(50)]
    with database_reads(client.app.state.db) as reads:
        for _ in range(2):
            results = (await client.post("/api/v1/votes/batch", json={"votes": votes})).json()["results"]
            assert {r["status"] for r in results} == {404}
    assert len(reads) == 1


async def test_a_poll_announced_after_its_id_was_unknown_takes_votes(client):
    poll_id = f"poll-{secrets.token_hex(4)}"
    assert (await send_vote(client, Voter().vote(poll_id, "yes"))).status_code == 404
    await add_poll_row(client.app.state.db, poll_id)
    await client.app.state.poll_news.announce(poll_id)  # what creating a poll does
    assert (await send_vote(client, Voter().vote(poll_id, "yes"))).status_code == 201


@pytest.mark.skipif(not os.environ.get(REDIS_URL_ENV), reason=f"needs {REDIS_URL_ENV} (.ci/run sets it)")
async def test_a_poll_created_on_one_worker_is_no_longer_unknown_on_another(tmp_path):
    settings = redis_settings(tmp_path)
    poll_id = f"poll-{secrets.token_hex(4)}"
    async with serve(settings) as one, serve(settings) as other:
        assert (await send_vote(other, Voter().vote(poll_id, "yes"))).status_code == 404
        await add_poll_row(one.app.state.db, poll_id)
        async with Redis.from_url(os.environ[REDIS_URL_ENV]).pubsub() as heard:
            await heard.subscribe(one.app.state.poll_news.channel)
            await one.app.state.poll_news.announce(poll_id)
            # Once the announcement is on Redis, the other worker's subscription has it too.
            assert await next_message(heard) == poll_id.encode()
        await until_known(other, poll_id)
        assert (await send_vote(other, Voter().vote(poll_id, "yes"))).status_code == 201


async def until_known(client: Any, poll_id: str) -> None:
    """Until the worker's subscription has handled the announcement (a task of its own)."""
    async with asyncio.timeout(10):
        while client.app.state.votes.polls.known_unknown(poll_id):  # noqa: ASYNC110 (no event to await)
            await asyncio.sleep(0.01)


@pytest.mark.skipif(not os.environ.get(REDIS_URL_ENV), reason=f"needs {REDIS_URL_ENV} (.ci/run sets it)")
async def test_creating_a_poll_announces_it_to_every_worker(tmp_path):
    settings = redis_settings(tmp_path)
    async with serve(settings) as client, Redis.from_url(os.environ[REDIS_URL_ENV]).pubsub() as heard:
        await heard.subscribe(client.app.state.poll_news.channel)
        created = await create_poll(client, question="Announced?", options=["A", "B"])
        assert await next_message(heard) == created["id"].encode()
