"""No row that every vote of a poll must lock until its commit (issue: a fleet on PostgreSQL).

On PostgreSQL the votes of one poll, from as many nodes as there are, take their seqs from the
poll's sequence and add to sharded counts: two transactions of one poll never wait for each other.
A transaction that takes seqs and never commits leaves a gap that the log voids, once no vote
transaction can still fill it; the count stays exact and every later receipt's seq stays its
entry's index + 1.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.ballot_log.audit import audit
from app.ballot_log.audit_source import resolve
from app.ballot_log.entries import Entry, Void, decode_entry, unbundle
from app.ballot_log.integrator import void_gap
from app.ballot_log.publish import publish
from app.ballot_log.voids import GapWatch
from app.core.protocol import Vote
from app.polls.store import close_poll, load_poll
from app.storage.db import Database
from app.votes.rows import count_votes, insert_votes, reserve_seqs
from tests.conftest import PG_URL_ENV
from tests.helpers import Voter, b64decode, send_vote

pytestmark = [
    pytest.mark.parametrize("database_url", ["postgres"], indirect=True),
    pytest.mark.skipif(not os.environ.get(PG_URL_ENV), reason=f"PostgreSQL tests need {PG_URL_ENV}"),
]

WAIT_S = 10  # a generous bound on a condition awaited; nothing here is timed


@asynccontextmanager
async def vote_in_flight(
    db: Database, poll_id: str, option_id: str = "yes", *, lock_timeout: str = "0"
) -> AsyncIterator[tuple[int, Any]]:
    """A vote transaction as the group commit runs it (seqs, the vote's row, the counts), left
    open until the block ends; yields the vote's seq and the transaction's connection. With a
    `lock_timeout`, it fails rather than wait that long for a lock."""
    vote = Voter().vote(poll_id, option_id)
    async with db.engine.connect() as conn:
        await conn.begin()
        await conn.execute(text(f"SET LOCAL lock_timeout = '{lock_timeout}'"))
        seq = (await conn.run_sync(lambda sync: reserve_seqs(sync, poll_id, 1)))[0]
        row = (
            vote["idempotency_key"],
            poll_id,
            seq,
            vote["vote_id"],
            option_id,
            b64decode(vote["public_key"]),
            b64decode(vote["signature"]),
            vote["created_at"],
            vote["created_at"],
            secrets.token_bytes(32),
            b"not served in this test",
        )
        await conn.run_sync(lambda sync: insert_votes(sync, [row]))
        await conn.run_sync(lambda sync: count_votes(sync, [msgspec.convert(vote, Vote)]))
        yield seq, conn


async def test_two_vote_transactions_of_one_poll_commit_without_waiting_for_each_other(client, poll, settings):
    db = Database(settings.database_url)
    try:
        async with vote_in_flight(db, poll["id"]) as (first_seq, _):
            # The first transaction still holds whatever it locked; the second must not need it.
            async with vote_in_flight(db, poll["id"], "no", lock_timeout="2s") as (second_seq, conn):
                await conn.commit()
            assert second_seq == first_seq + 1
        results = (await client.get(f"/api/v1/polls/{poll['id']}/results")).json()
        assert results["total"] == 1  # the first rolled back; the second counted, on its own shard
        assert [option["votes"] for option in results["options"]] == [0, 1]
    finally:
        await db.dispose()


async def test_a_gap_left_by_a_transaction_that_never_committed_is_voided_and_the_log_goes_on(
    client, poll, settings, tmp_path
):
    db = Database(settings.database_url)
    try:
        first = Voter().vote(poll["id"], "yes")
        assert (await send_vote(client, first)).status_code == 201
        async with vote_in_flight(db, poll["id"]) as (lost_seq, _):
            pass  # rolled back: seq 2 was handed out and will never be a vote
        last = Voter().vote(poll["id"], "no")
        response = await send_vote(client, last)
        assert response.status_code == 201
        last_seq = msgspec.json.decode(b64decode(response.json()["payload"]))["seq"]
        assert (lost_seq, last_seq) == (2, 3)

        integrator = client.app.state.log_integrator
        deadline = time.monotonic() + WAIT_S
        while (checkpoint := await _size(client, poll["id"])) < last_seq and time.monotonic() < deadline:
            await integrator.run_once()
            await asyncio.sleep(0.05)
        assert checkpoint == 3

        out = tmp_path / "mirror"
        await publish(db, poll["id"], out, integrator.signer, await load_poll(db, poll["id"]))
        entries = [decode_entry(e) for e in unbundle((out / "tile/entries/000.p/3").read_bytes(), 3)]
        assert isinstance(entries[0], Entry)
        assert entries[0].vote_id == first["vote_id"]
        assert entries[1] == Void(poll["id"], lost_seq)
        assert isinstance(entries[2], Entry)
        assert entries[2].vote_id == last["vote_id"]

        target = resolve(str(out), [])
        report = audit(target.log, target.verifiers, target.poll)
        assert (dict(report.tally), report.voids) == ({"yes": 1, "no": 1}, 1)
        results = (await client.get(f"/api/v1/polls/{poll['id']}/results")).json()
        assert results["total"] == 2
    finally:
        await db.dispose()


async def test_a_seq_whose_transaction_is_still_in_flight_is_never_voided(client, poll, settings):
    db = Database(settings.database_url)
    try:
        watch = GapWatch(clock=itertools.count().__next__)  # a second a call: every gap is due at its second sighting
        async with vote_in_flight(db, poll["id"]) as (slow_seq, slow):
            assert (await send_vote(client, Voter().vote(poll["id"], "no"))).status_code == 201
            assert not await void_gap(db, poll["id"], watch)  # the gap's first sighting
            voiding = asyncio.create_task(void_gap(db, poll["id"], watch))
            await asyncio.wait_for(_a_lock_wait(db, slow), WAIT_S)
            await slow.commit()  # the slow vote lands: its seq is a vote, never a void
        assert await voiding is False
        async with db.read() as conn:
            voids = (await conn.execute(text("SELECT count(*) FROM ballot_log_voids"))).scalar()
        assert (slow_seq, voids) == (1, 0)
    finally:
        await db.dispose()


async def test_closing_a_poll_waits_for_its_votes_in_flight(client, poll, settings):
    db = Database(settings.database_url)
    try:
        async with vote_in_flight(db, poll["id"]) as (_, slow):
            closing = asyncio.create_task(close_poll(db, poll["id"], int(time.time() * 1000)))
            await asyncio.wait_for(_a_lock_wait(db, slow), WAIT_S)
            assert not closing.done()
            await slow.commit()
        closed = await closing
        assert closed is not None
        assert closed.closes_at is not None
        results = (await client.get(f"/api/v1/polls/{poll['id']}/results")).json()
        assert results["total"] == 1  # the vote decided before the close counts
    finally:
        await db.dispose()


async def _a_lock_wait(db: Database, holder: AsyncConnection) -> None:
    """Returns once another backend of this database waits for a lock (one `holder` has)."""
    holder_pid = (await holder.execute(text("SELECT pg_backend_pid()"))).scalar()
    async with db.engine.connect() as observer:
        while True:
            waiting = (
                await observer.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND pid NOT IN (pg_backend_pid(), :holder) AND wait_event_type = 'Lock'"
                    ),
                    {"holder": holder_pid},
                )
            ).scalar()
            if waiting:
                return
            await asyncio.sleep(0.02)


async def _size(client, poll_id: str) -> int:
    note = (await client.get(f"/api/v1/polls/{poll_id}/log/checkpoint")).text
    return int(note.split("\n")[1])
