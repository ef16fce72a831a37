"""The ballot log in the database: entries read from the votes table in seq order, tiles and
the latest checkpoint from their own tables (app/storage/schema.py)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, tuple_
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from app.ballot_log.entries import entry_of_row
from app.storage.schema import ballot_log_checkpoints, ballot_log_tiles, polls


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    size: int
    root: bytes
    note: bytes
    made_at: int


# Each read is written once, for a sync connection: the sequencer's helper process uses it as it is
# (app/ballot_log/integrator.py), the service through the async wrapper beside it.


def checkpoint_of(conn: Connection, poll_id: str) -> StoredCheckpoint | None:
    row = conn.execute(
        select(
            ballot_log_checkpoints.c.size,
            ballot_log_checkpoints.c.root,
            ballot_log_checkpoints.c.note,
            ballot_log_checkpoints.c.made_at,
        ).where(ballot_log_checkpoints.c.poll_id == poll_id)
    ).first()
    return StoredCheckpoint(row.size, bytes(row.root), bytes(row.note), row.made_at) if row else None


async def load_checkpoint(conn: AsyncConnection, poll_id: str) -> StoredCheckpoint | None:
    return await conn.run_sync(checkpoint_of, poll_id)


def entries_of(conn: Connection, poll_id: str, first: int, count: int) -> list[bytes]:
    """The entries at log indices first … first+count-1 (seq first+1 …), as far as they exist."""
    # On the driver, as the vote path's statements are: per row, SQLAlchemy's result processing
    # would cost more than the entry itself (app/votes/rows.py).
    marks = ("$1", "$2", "$3") if conn.dialect.paramstyle == "numeric_dollar" else ("?", "?", "?")
    rows = conn.exec_driver_sql(
        "SELECT seq, option_id, vote_id, idempotency_key, created_at, public_key, signature FROM votes "
        f"WHERE poll_id = {marks[0]} AND seq > {marks[1]} AND seq <= {marks[2]} ORDER BY seq",
        (poll_id, first, first + count),
    )
    entries = []
    for expected, (seq, option_id, vote_id, key, created_at, public_key, signature) in enumerate(rows, first + 1):
        if seq != expected:
            raise LookupError(f"poll {poll_id}: vote seq {expected} is missing, found {seq}")
        entries.append(entry_of_row(poll_id, option_id, vote_id, key, created_at, bytes(public_key), bytes(signature)))
    return entries


async def load_entries(conn: AsyncConnection, poll_id: str, first: int, count: int) -> list[bytes]:
    return await conn.run_sync(entries_of, poll_id, first, count)


def tiles_of(conn: Connection, poll_id: str, wanted: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    if not wanted:
        return {}
    rows = conn.execute(
        select(ballot_log_tiles.c.level, ballot_log_tiles.c.tile_index, ballot_log_tiles.c.hashes).where(
            ballot_log_tiles.c.poll_id == poll_id,
            tuple_(ballot_log_tiles.c.level, ballot_log_tiles.c.tile_index).in_(wanted),
        )
    )
    return {(row.level, row.tile_index): bytes(row.hashes) for row in rows}


async def load_tiles(
    conn: AsyncConnection, poll_id: str, wanted: list[tuple[int, int]]
) -> dict[tuple[int, int], bytes]:
    return await conn.run_sync(tiles_of, poll_id, wanted)


def checkpoint_size(conn: Connection, poll_id: str) -> tuple[int, bytes] | None:
    """The stored checkpoint's size and root, inside a write transaction (sync, see save)."""
    row = conn.execute(
        select(ballot_log_checkpoints.c.size, ballot_log_checkpoints.c.root).where(
            ballot_log_checkpoints.c.poll_id == poll_id
        )
    ).first()
    return (row.size, bytes(row.root)) if row else None


def save(
    conn: Connection, poll_id: str, stored: StoredCheckpoint, changed: dict[tuple[int, int], bytes], *, is_new: bool
) -> None:
    """Writes a new checkpoint and the tiles it needs. Sync: it runs inside the commit engine's
    short write transaction (app/votes/commit_engine.py), as a group commit's statements do."""
    values = {"size": stored.size, "root": stored.root, "note": stored.note, "made_at": stored.made_at}
    if is_new:
        conn.execute(ballot_log_checkpoints.insert().values(poll_id=poll_id, **values))
    else:
        conn.execute(
            ballot_log_checkpoints.update().where(ballot_log_checkpoints.c.poll_id == poll_id).values(**values)
        )
    for (level, index), hashes in changed.items():
        updated = conn.execute(
            ballot_log_tiles.update()
            .where(
                ballot_log_tiles.c.poll_id == poll_id,
                ballot_log_tiles.c.level == level,
                ballot_log_tiles.c.tile_index == index,
            )
            .values(hashes=hashes)
        )
        if updated.rowcount == 0:
            conn.execute(
                ballot_log_tiles.insert().values(poll_id=poll_id, level=level, tile_index=index, hashes=hashes)
            )


def polls_behind(conn: Connection) -> list[str]:
    """Polls with accepted votes that no checkpoint covers yet."""
    rows = conn.execute(
        select(polls.c.id)
        .select_from(polls.outerjoin(ballot_log_checkpoints, ballot_log_checkpoints.c.poll_id == polls.c.id))
        .where(polls.c.vote_count > func.coalesce(ballot_log_checkpoints.c.size, 0))
    )
    return [row.id for row in rows]


def vote_count_of(conn: Connection, poll_id: str) -> int | None:
    return conn.execute(select(polls.c.vote_count).where(polls.c.id == poll_id)).scalar_one_or_none()


async def vote_count(conn: AsyncConnection, poll_id: str) -> int | None:
    return await conn.run_sync(vote_count_of, poll_id)
