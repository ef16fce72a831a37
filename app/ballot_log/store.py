"""The ballot log in the database: entries read from the votes table (and the voided seqs) in seq
order, tiles and the latest checkpoint from their own tables (app/storage/schema.py)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from app.ballot_log.entries import entry_of_row, void_entry
from app.storage.driver_sql import Marks
from app.storage.schema import polls


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    size: int
    root: bytes
    note: bytes
    made_at: int


# Each read is written once, for a sync connection: the sequencer's helper process uses it as it is
# (app/ballot_log/integrator.py), the service through the async wrapper beside it. The sequencer
# runs these reads and the writes below every round, so they go to the driver as plain SQL
# (app/storage/driver_sql.py): built by SQLAlchemy Core, they cost it more than its hashing did.


def checkpoint_of(conn: Connection, poll_id: str) -> StoredCheckpoint | None:
    marks = Marks(conn)
    row = conn.exec_driver_sql(
        f"SELECT size, root, note, made_at FROM ballot_log_checkpoints WHERE poll_id = {marks.take(1)}", (poll_id,)
    ).first()
    return StoredCheckpoint(row[0], bytes(row[1]), bytes(row[2]), row[3]) if row else None


async def load_checkpoint(conn: AsyncConnection, poll_id: str) -> StoredCheckpoint | None:
    return await conn.run_sync(checkpoint_of, poll_id)


def entries_of(conn: Connection, poll_id: str, first: int, count: int) -> list[bytes]:
    """The entries at log indices first … first+count-1 (seq first+1 …), up to the first seq that
    is neither a vote nor a void: one still in flight, or one the sequencer has yet to void."""
    # On the driver, as the vote path's statements are: per row, SQLAlchemy's result processing
    # would cost more than the entry itself (app/votes/rows.py).
    numbered = conn.dialect.paramstyle == "numeric_dollar"
    marks = ("$1", "$2", "$3") if numbered else ("?1", "?2", "?3")  # each used twice
    rows = conn.exec_driver_sql(
        "SELECT seq, option_id, vote_id, idempotency_key, created_at, public_key, signature FROM votes "
        f"WHERE poll_id = {marks[0]} AND seq > {marks[1]} AND seq <= {marks[2]} "
        "UNION ALL SELECT seq, NULL, NULL, NULL, NULL, NULL, NULL FROM ballot_log_voids "
        f"WHERE poll_id = {marks[0]} AND seq > {marks[1]} AND seq <= {marks[2]} ORDER BY 1",
        (poll_id, first, first + count),
    )
    entries = []
    for expected, (seq, option_id, vote_id, key, created_at, public_key, signature) in enumerate(rows, first + 1):
        if seq != expected:
            break
        if option_id is None:
            entries.append(void_entry(poll_id, seq))
        else:
            entries.append(
                entry_of_row(poll_id, option_id, vote_id, key, created_at, bytes(public_key), bytes(signature))
            )
    return entries


async def load_entries(conn: AsyncConnection, poll_id: str, first: int, count: int) -> list[bytes]:
    """Entries a checkpoint covers, to publish: all of them, or LookupError."""
    entries = await conn.run_sync(entries_of, poll_id, first, count)
    if len(entries) != count:
        raise LookupError(f"poll {poll_id}: entry {first + len(entries)} of its log is missing")
    return entries


def tiles_of(conn: Connection, poll_id: str, wanted: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    if not wanted:
        return {}
    marks = Marks(conn)
    # One look-up in the primary key per tile, OR-ed: SQLite scans the poll's tiles for a row-value
    # `(level, tile_index) IN (…)` (app/votes/rows.py found the same of the votes index).
    poll = marks.take(1)
    clauses = " OR ".join(f"(level = {marks.take(1)} AND tile_index = {marks.take(1)})" for _ in wanted)
    rows = conn.exec_driver_sql(
        f"SELECT level, tile_index, hashes FROM ballot_log_tiles WHERE poll_id = {poll} AND ({clauses})",
        (poll_id, *(number for tile in wanted for number in tile)),
    )
    return {(level, index): bytes(hashes) for level, index, hashes in rows}


async def load_tiles(
    conn: AsyncConnection, poll_id: str, wanted: list[tuple[int, int]]
) -> dict[tuple[int, int], bytes]:
    return await conn.run_sync(tiles_of, poll_id, wanted)


def checkpoint_size(conn: Connection, poll_id: str) -> tuple[int, bytes] | None:
    """The stored checkpoint's size and root, inside a write transaction (sync, see save)."""
    marks = Marks(conn)
    row = conn.exec_driver_sql(
        f"SELECT size, root FROM ballot_log_checkpoints WHERE poll_id = {marks.take(1)}", (poll_id,)
    ).first()
    return (row[0], bytes(row[1])) if row else None


def save(
    conn: Connection, poll_id: str, stored: StoredCheckpoint, changed: dict[tuple[int, int], bytes], *, is_new: bool
) -> None:
    """Writes a new checkpoint and the tiles it needs. Sync: it runs inside the commit engine's
    short write transaction (app/votes/commit_engine.py), as a group commit's statements do."""
    marks = Marks(conn)
    values = (stored.size, stored.root, stored.note, stored.made_at, poll_id)
    if is_new:  # a plain insert: should a checkpoint be there after all, the write fails
        sql = f"INSERT INTO ballot_log_checkpoints (size, root, note, made_at, poll_id) VALUES ({marks.take(5)})"
    else:
        size, root, note, made_at, poll = (marks.take(1) for _ in range(5))
        sql = (
            f"UPDATE ballot_log_checkpoints SET size = {size}, root = {root}, note = {note}, made_at = {made_at} "
            f"WHERE poll_id = {poll}"
        )
    conn.exec_driver_sql(sql, values)
    if changed:
        # A partial tile grows in place (full ones are written once): an upsert, all in one call.
        marks = Marks(conn)
        conn.exec_driver_sql(
            f"INSERT INTO ballot_log_tiles (poll_id, level, tile_index, hashes) VALUES ({marks.take(4)}) "
            "ON CONFLICT (poll_id, level, tile_index) DO UPDATE SET hashes = excluded.hashes",
            [(poll_id, level, index, hashes) for (level, index), hashes in changed.items()],
        )


def polls_behind(conn: Connection) -> list[str]:
    """Polls with accepted votes that no checkpoint covers yet."""
    rows = conn.exec_driver_sql(
        "SELECT p.id FROM polls p LEFT JOIN ballot_log_checkpoints c ON c.poll_id = p.id "
        "WHERE EXISTS (SELECT 1 FROM votes v WHERE v.poll_id = p.id AND v.seq > coalesce(c.size, 0))"
    )
    return [poll_id for (poll_id,) in rows]


def poll_exists_in(conn: Connection, poll_id: str) -> bool:
    return conn.execute(select(polls.c.id).where(polls.c.id == poll_id)).first() is not None


async def poll_exists(conn: AsyncConnection, poll_id: str) -> bool:
    return await conn.run_sync(poll_exists_in, poll_id)
