"""The statements of a group commit, as plain SQL on the driver: SQLite and PostgreSQL alike.

They run once per batch on the event loop's thread, so their cost per vote matters: SQL
Expression Language statements spend more building, caching and binding than the database
spends running them (bench/ingest.py). The schema is app/storage/schema.py; these name its columns.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

from sqlalchemy.engine import Connection

from app.core.protocol import Vote
from app.storage.driver_sql import Marks
from app.storage.poll_locks import hold_admission_shared, sequence_of

TALLY_SHARDS = 64
"""Rows per option count on PostgreSQL: concurrent transactions of a poll rarely draw the same."""

VOTE_COLUMNS = (
    "idempotency_key",
    "poll_id",
    "seq",
    "vote_id",
    "option_id",
    "public_key",
    "signature",
    "created_at",
    "accepted_at",
    "request_hash",
    "receipt",
)
VoteRow = tuple[str, str, int, str, str, bytes, bytes, int, int, bytes, bytes]
"""One votes row, its values in VOTE_COLUMNS order."""


def stored_by_key(conn: Connection, keys: Sequence[str]) -> dict[str, tuple[bytes, bytes]]:
    """The request hash and receipt stored under each of the keys that is taken."""
    marks = Marks(conn)
    rows = conn.exec_driver_sql(
        f"SELECT idempotency_key, request_hash, receipt FROM votes WHERE idempotency_key IN ({marks.take(len(keys))})",
        tuple(keys),
    )
    return {key: (bytes(request_hash), bytes(receipt)) for key, request_hash, receipt in rows}


def devices_that_voted(conn: Connection, devices: Sequence[tuple[str, bytes]]) -> set[tuple[str, bytes]]:
    marks = Marks(conn)
    if marks.numbered:
        # PostgreSQL: one probe of the (poll_id, public_key) index per device. With `poll_id = …
        # AND public_key IN (…)` the planner, on statistics left behind by a fast-growing poll,
        # scans the whole poll instead (6 ms at 18,000 votes and growing, against 1 ms).
        rows = conn.exec_driver_sql(
            "SELECT d.poll_id, d.public_key FROM unnest($1::text[], $2::bytea[]) AS d(poll_id, public_key), "
            "LATERAL (SELECT 1 FROM votes v WHERE v.poll_id = d.poll_id AND v.public_key = d.public_key LIMIT 1) "
            "AS hit",
            ([poll_id for poll_id, _ in devices], [public_key for _, public_key in devices]),
        )
        return {(poll_id, bytes(public_key)) for poll_id, public_key in rows}
    by_poll: dict[str, list[bytes]] = {}
    for poll_id, public_key in devices:
        by_poll.setdefault(poll_id, []).append(public_key)
    # SQLite: `poll_id = ? AND public_key IN (…)` per poll, OR-ed, is a look-up in the unique index
    # (a row-value `(poll_id, public_key) IN (…)` makes it scan the whole index).
    clauses, params = [], []
    for poll_id, keys in by_poll.items():
        clauses.append(f"(poll_id = {marks.take(1)} AND public_key IN ({marks.take(len(keys))}))")
        params += [poll_id, *keys]
    rows = conn.exec_driver_sql(f"SELECT poll_id, public_key FROM votes WHERE {' OR '.join(clauses)}", tuple(params))
    return {(poll_id, bytes(public_key)) for poll_id, public_key in rows}


def reserve_seqs(
    conn: Connection, poll_id: str, count: int, open_for: tuple[int, int] | None = None
) -> list[int] | None:
    """Reserves `count` positions in the poll, in acceptance order, and returns them.

    With `open_for` (the latest created_at among the votes, and the time now), only while the poll
    as committed is open now and was open when each vote was cast; None when it is not, and each
    vote must then be judged against the close (`poll_window`).

    SQLite, one writer at a time, counts them on the poll's row. PostgreSQL takes them from the
    poll's sequence, under the poll's admission lock (app/storage/poll_locks.py): no row is locked.
    """
    marks = Marks(conn)
    if marks.numbered:
        hold_admission_shared(conn, poll_id)
        sql = f"SELECT ARRAY(SELECT nextval({sequence_of('id')}) FROM generate_series(1, $1)) FROM polls WHERE id = $2"
        params: tuple[object, ...] = (count, poll_id)
        marks.used = 2
    else:
        sql = f"UPDATE polls SET vote_count = vote_count + {marks.take(1)} WHERE id = {marks.take(1)}"
        params = (count, poll_id)
    if open_for is not None:
        cast_by, now = marks.take(1), marks.take(1)
        sql += f" AND (closes_at IS NULL OR (closes_at >= {cast_by} AND closes_at >= {now}))"
        params += open_for
    if marks.numbered:
        seqs = conn.exec_driver_sql(sql, params).scalar_one_or_none()
        return None if seqs is None else list(seqs)
    total = conn.exec_driver_sql(f"{sql} RETURNING vote_count", params).scalar_one_or_none()
    return None if total is None else list(range(total - count + 1, total + 1))


def registered_by(conn: Connection, poll_id: str, public_keys: Sequence[bytes], instant_ms: int) -> set[bytes]:
    """The keys the service saw in this poll at `instant_ms` or before (app/votes/devices.py)."""
    marks = Marks(conn)
    rows = conn.exec_driver_sql(
        f"SELECT public_key FROM devices WHERE poll_id = {marks.take(1)} AND registered_at <= {marks.take(1)} "
        f"AND public_key IN ({marks.take(len(public_keys))})",
        (poll_id, instant_ms, *public_keys),
    )
    return {bytes(public_key) for (public_key,) in rows}


def poll_window(conn: Connection, poll_id: str) -> tuple[int | None, int] | None:
    """The poll's closes_at and late-delivery grace (seconds) as committed, and so they stay for the
    rest of the transaction (PostgreSQL: under the poll's admission lock, which a close takes
    exclusively; SQLite's write lock covers the whole database); None when the poll is gone."""
    marks = Marks(conn)
    if marks.numbered:
        hold_admission_shared(conn, poll_id)
    row = conn.exec_driver_sql(
        f"SELECT closes_at, late_grace_seconds FROM polls WHERE id = {marks.take(1)}", (poll_id,)
    ).one_or_none()
    return None if row is None else (row[0], row[1])


def insert_votes(conn: Connection, rows: Sequence[VoteRow]) -> None:
    marks = Marks(conn)
    conn.exec_driver_sql(
        f"INSERT INTO votes ({', '.join(VOTE_COLUMNS)}) VALUES ({marks.take(len(VOTE_COLUMNS))})", list(rows)
    )


def count_votes(conn: Connection, accepted: Sequence[Vote]) -> None:
    """Adds the accepted votes to their options' counts, on one shard of them picked for this
    transaction (app/storage/schema.py `option_tallies`), in sorted order: two transactions on
    one shard lock its rows in the same order and cannot deadlock."""
    tally = Counter((vote.poll_id, vote.option_id) for vote in accepted)
    marks = Marks(conn)
    # SQLite has one writer at a time: one shard. On PostgreSQL two transactions meet on a row
    # only when they draw the same shard.
    shard = random.randrange(TALLY_SHARDS) if marks.numbered else 0
    conn.exec_driver_sql(
        f"INSERT INTO option_tallies (poll_id, option_id, shard, votes) VALUES ({marks.take(4)}) "
        "ON CONFLICT (poll_id, option_id, shard) DO UPDATE SET votes = option_tallies.votes + excluded.votes",
        [(*key, shard, tally[key]) for key in sorted(tally)],
    )
