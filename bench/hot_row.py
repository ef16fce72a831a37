"""Is a poll's row the hot row? PostgreSQL write transactions shaped like a group commit's, from
several connections (as several nodes would send them), on one poll or on one poll each.

    python -m bench.hot_row [--duration 3] [--rounds 3] [--batch 50] [--writers 1,4,8]

Each transaction does what app/votes/rows.py does for one batch of one poll: reserve the batch's
seqs on the poll's row (`UPDATE polls SET vote_count = vote_count + n … RETURNING`), insert the
votes, and (variant "counters") add them to the options' counts; then commits. The variant
"seq only" leaves the option counts out, to show what they add. All in a fresh database made and
dropped here (VOTE_TEST_PG_URL names the server). Figures are votes/s, medians of the rounds, with
each as a ratio to one writer with counters on one poll, measured in the same run: the machine is
shared, only ratios mean anything. With 2 cores, the writers and the server share them: more
writers can show the lock, not the scaling of many machines.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import time
import uuid

import asyncpg
from sqlalchemy.engine import make_url

OPTIONS = ("a", "b", "c")


async def setup(conn: asyncpg.Connection, polls: list[str]) -> None:
    await conn.execute(
        "DROP TABLE IF EXISTS votes; DROP TABLE IF EXISTS options; DROP TABLE IF EXISTS polls;"
        "CREATE TABLE polls (id text PRIMARY KEY, vote_count bigint NOT NULL DEFAULT 0);"
        "CREATE TABLE options (poll_id text, id text, votes bigint NOT NULL DEFAULT 0, PRIMARY KEY (poll_id, id));"
        "CREATE TABLE votes (idempotency_key text PRIMARY KEY, poll_id text NOT NULL, seq bigint NOT NULL,"
        " option_id text NOT NULL, receipt bytea NOT NULL, UNIQUE (poll_id, seq))"
    )
    await conn.executemany("INSERT INTO polls (id) VALUES ($1)", [(p,) for p in polls])
    await conn.executemany(
        "INSERT INTO options (poll_id, id) VALUES ($1, $2)", [(p, o) for p in polls for o in OPTIONS]
    )


async def writer(dsn: str, poll: str, batch: int, counters: bool, stop_at: float) -> int:
    conn = await asyncpg.connect(dsn)
    done = 0
    try:
        while time.monotonic() < stop_at:
            async with conn.transaction():
                total = await conn.fetchval(
                    "UPDATE polls SET vote_count = vote_count + $1 WHERE id = $2 RETURNING vote_count", batch, poll
                )
                first = total - batch + 1
                await conn.executemany(
                    "INSERT INTO votes VALUES ($1, $2, $3, $4, $5)",
                    [(str(uuid.uuid4()), poll, first + i, OPTIONS[i % 3], os.urandom(200)) for i in range(batch)],
                )
                if counters:
                    await conn.executemany(
                        "UPDATE options SET votes = votes + $1 WHERE poll_id = $2 AND id = $3",
                        [(batch // 3, poll, option) for option in OPTIONS],
                    )
            done += batch
    finally:
        await conn.close()
    return done


async def measure(dsn: str, writers: int, one_poll: bool, counters: bool, batch: int, duration: float) -> float:
    polls = ["p"] if one_poll else [f"p{i}" for i in range(writers)]
    conn = await asyncpg.connect(dsn)
    try:
        await setup(conn, polls)
    finally:
        await conn.close()
    stop_at = time.monotonic() + duration
    done = await asyncio.gather(
        *(writer(dsn, polls[0 if one_poll else i], batch, counters, stop_at) for i in range(writers))
    )
    return sum(done) / duration


async def main(args: argparse.Namespace) -> None:
    url = make_url(os.environ.get("VOTE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    server = url.set(drivername="postgresql")
    name = f"bench_hot_row_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server.render_as_string(hide_password=False))
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = server.set(database=name).render_as_string(hide_password=False)
    cases = [
        (writers, one_poll, counters)
        for writers in args.writers
        for one_poll in (True, False)
        for counters in (True, False)
        if writers > 1 or one_poll
    ]
    figures: dict[tuple[int, bool, bool], list[float]] = {case: [] for case in cases}
    try:
        for _ in range(args.rounds):
            for case in cases:  # interleaved, so that the machine's noise falls on every case alike
                figures[case].append(await measure(dsn, *case, args.batch, args.duration))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    base = statistics.median(figures[(1, True, True)])
    print(f"batch {args.batch} votes, {args.duration:g} s x {args.rounds} rounds, {os.cpu_count()} cores (shared)")
    print(f"{'writers':>7}  {'polls':<13} {'variant':<9} {'votes/s':>9}  {'ratio':>5}")
    for (writers, one_poll, counters), values in figures.items():
        median = statistics.median(values)
        polls = "one poll" if one_poll else "one per writer"
        variant = "counters" if counters else "seq only"
        print(f"{writers:>7}  {polls:<13} {variant:<9} {median:>9,.0f}  {median / base:>5.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--writers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4, 8])
    asyncio.run(main(parser.parse_args()))
