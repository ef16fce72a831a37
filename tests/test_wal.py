"""SQLite WAL checkpoints run in a helper process, never inside a group commit, and keep the WAL bounded."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from app.storage.db import Database
from app.votes import wal_checkpoint
from app.votes.commit_engine import CommitEngine
from app.votes.wal_checkpoint import Checkpointer, WalCheckpoints

ROWS, ROW_BYTES = 200, 2000


def in_database_file(path: Path) -> bool:
    """Whether the rows written so far have been copied from the WAL into the database file."""
    return path.stat().st_size >= ROWS * ROW_BYTES


async def test_group_commit_connections_leave_checkpoints_to_the_checkpointer(tmp_path):
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'votes.db'}")
    engine = CommitEngine(db)
    try:
        autocheckpoint, durable = await engine.commit(
            lambda run: run(lambda conn: conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one())
        )
        await durable
        assert autocheckpoint == 0
    finally:
        await engine.close()
        await db.dispose()


async def test_checkpointer_copies_the_wal_back_while_writers_go_on(tmp_path):
    path = tmp_path / "votes.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("CREATE TABLE t (payload BLOB)")
    for _ in range(ROWS):
        writer.execute(f"INSERT INTO t VALUES (randomblob({ROW_BYTES}))")
    assert not in_database_file(path)

    checkpointer = Checkpointer(str(path), str(tmp_path / "votes.db.write-lock"))
    try:
        await checkpointer.process.start()
        await checkpointer.round()  # in its helper process
        assert checkpointer.process.pid is not None
        assert in_database_file(path)
        # Nothing of it holds writers up afterwards: this insert does not wait for any lock.
        writer.execute("PRAGMA busy_timeout=0")
        writer.execute(f"INSERT INTO t VALUES (randomblob({ROW_BYTES}))")
    finally:
        await checkpointer.stop()
        writer.close()


# Each round writes this much in a commit that overlaps every PASSIVE checkpoint, as group commits
# under sustained load do: SQLite never finds every frame copied, and never restarts the WAL.
COMMIT_ROWS, ROUNDS = 64, 200
RESTART_BYTES = 1024 * 1024
WAL_BOUND_BYTES = 4 * 1024 * 1024


def test_the_wal_stays_bounded_when_commits_overlap_every_passive_checkpoint(tmp_path, monkeypatch):
    path = str(tmp_path / "votes.db")
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("CREATE TABLE t (payload BLOB)")
    checkpoint = wal_checkpoint._checkpoint

    def overlapped_by_a_commit(conn: sqlite3.Connection, mode: str) -> tuple[int, int, int]:
        if mode != "PASSIVE":  # the others run under the write lock: no commit overlaps them
            return checkpoint(conn, mode)
        writer.execute("BEGIN IMMEDIATE")  # its snapshot is taken before the checkpoint ends
        writer.executemany("INSERT INTO t VALUES (randomblob(?))", [(ROW_BYTES,)] * COMMIT_ROWS)
        try:
            return checkpoint(conn, mode)
        finally:
            writer.execute("COMMIT")

    monkeypatch.setattr(wal_checkpoint, "_checkpoint", overlapped_by_a_commit)
    checkpoints = WalCheckpoints(path, f"{path}.write-lock", restart_bytes=RESTART_BYTES)
    largest = 0
    try:
        for _ in range(ROUNDS):
            checkpoints.round()
            largest = max(largest, os.stat(f"{path}-wal").st_size)
    finally:
        checkpoints.close()
        writer.close()
    assert ROUNDS * COMMIT_ROWS * ROW_BYTES > 5 * WAL_BOUND_BYTES  # what a WAL that never restarts holds
    assert largest <= WAL_BOUND_BYTES, f"the WAL grew to {largest / 2**20:.1f} MB"
