"""Is a poll's row the hot row? Vote transactions shaped like a group commit's, from several
connections (as several nodes would send them), on one poll or on one poll each, on PostgreSQL.

    python -m bench.hot_row [--duration 3] [--rounds 3] [--batch 50] [--writers 1,4,8]

Each transaction takes its batch's seqs, inserts the votes and adds them to their options' counts,
then commits, in two shapes measured in the same run on the same schema (this tree's migrations):
- "counter row", the shape before migration 0007: the seqs from `UPDATE polls SET vote_count = …`
  and the counts on one row per option, both locked until the commit;
- "sequence", this tree's statements (app/votes/rows.py): the seqs from the poll's sequence under a
  shared advisory lock, the counts on one of 64 shards per option.
Figures are votes/s, medians of the rounds, each as a ratio to one writer of its own shape on one
poll. The database is made and dropped here (VOTE_TEST_PG_URL names the server). With 2 cores,
the writers and the server share them: more writers can show the lock, not the scaling of many
machines.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import time
import uuid
from itertools import cycle, islice

import asyncpg
from sqlalchemy.engine import Connection, make_url

from app.core.protocol import Vote
from app.storage.db import Database
from app.storage.migrate import upgrade
from app.votes.rows import count_votes, insert_votes, reserve_seqs

OPTIONS = ("a", "b", "c")
SHAPES = ("counter row", "sequence")


async def setup(db: Database, polls: list[str]) -> None:
    async with db.write() as conn:
        await conn.exec_driver_sql("TRUNCATE votes, option_tallies, options, polls CASCADE")
        await conn.exec_driver_sql(
            "INSERT INTO polls (id, question, created_at) SELECT p, 'Bench?', 0 FROM unnest($1::text[]) AS p", (polls,)
        )
        await conn.exec_driver_sql(
            "INSERT INTO options (poll_id, id, label, position) "
            "SELECT p, o, o, 0 FROM unnest($1::text[]) AS p, unnest($2::text[]) AS o",
            (polls, list(OPTIONS)),
        )


def one_batch(conn: Connection, poll: str, size: int, shape: str) -> None:
    votes = [
        Vote(str(uuid.uuid4()), str(uuid.uuid4()), poll, option, 0, "", "") for option in islice(cycle(OPTIONS), size)
    ]
    if shape == "counter row":
        total = conn.exec_driver_sql(
            "UPDATE polls SET vote_count = vote_count + $1 WHERE id = $2 RETURNING vote_count", (size, poll)
        ).scalar_one()
        seqs = list(range(total - size + 1, total + 1))
    else:
        seqs = reserve_seqs(conn, poll, size) or []
    insert_votes(
        conn,
        [
            (
                v.idempotency_key,
                poll,
                seq,
                v.vote_id,
                v.option_id,
                os.urandom(32),
                os.urandom(64),
                0,
                0,
                os.urandom(32),
                os.urandom(200),
            )
            for v, seq in zip(votes, seqs, strict=True)
        ],
    )
    if shape == "counter row":
        conn.exec_driver_sql(
            "INSERT INTO option_tallies (poll_id, option_id, shard, votes) VALUES ($1, $2, 0, $3) "
            "ON CONFLICT (poll_id, option_id, shard) DO UPDATE SET votes = option_tallies.votes + excluded.votes",
            [(poll, option, sum(v.option_id == option for v in votes)) for option in OPTIONS],
        )
    else:
        count_votes(conn, votes)


async def writer(db: Database, poll: str, size: int, shape: str, stop_at: float) -> int:
    done = 0
    async with db.engine.connect() as conn:
        while time.monotonic() < stop_at:
            async with conn.begin():
                await conn.run_sync(one_batch, poll, size, shape)
            done += size
    return done


async def measure(db: Database, writers: int, one_poll: bool, shape: str, size: int, duration: float) -> float:
    polls = ["p"] if one_poll else [f"p{i}" for i in range(writers)]
    await setup(db, polls)
    stop_at = time.monotonic() + duration
    done = await asyncio.gather(
        *(writer(db, polls[0 if one_poll else i], size, shape, stop_at) for i in range(writers))
    )
    return sum(done) / duration


async def main(args: argparse.Namespace) -> None:
    url = make_url(os.environ.get("VOTE_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"))
    name = f"bench_hot_row_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False))
    await admin.execute(f'CREATE DATABASE "{name}"')
    db = Database(url.set(drivername="postgresql+asyncpg", database=name).render_as_string(hide_password=False))
    cases = [
        (writers, one_poll, shape)
        for writers in args.writers
        for one_poll in (True, False)
        for shape in SHAPES
        if writers > 1 or one_poll
    ]
    figures: dict[tuple[int, bool, str], list[float]] = {case: [] for case in cases}
    try:
        await upgrade(db)
        for _ in range(args.rounds):
            for case in cases:  # interleaved, so that the machine's noise falls on every case alike
                figures[case].append(await measure(db, *case, args.batch, args.duration))
    finally:
        await db.dispose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    print(f"batch {args.batch} votes, {args.duration:g} s x {args.rounds} rounds, {os.cpu_count()} cores (shared)")
    print(f"{'writers':>7}  {'polls':<14} {'shape':<12} {'votes/s':>9}  {'vs 1 writer':>11}")
    for (writers, one_poll, shape), values in figures.items():
        median = statistics.median(values)
        base = statistics.median(figures[(1, True, shape)])
        polls = "one poll" if one_poll else "one per writer"
        print(f"{writers:>7}  {polls:<14} {shape:<12} {median:>9,.0f}  {median / base:>11.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--writers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4, 8])
    asyncio.run(main(parser.parse_args()))
