"""SQLite WAL checkpoints run on their own thread, never inside a group commit."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from app.storage.db import Database
from app.votes.commit_engine import CommitEngine
from app.votes.wal_checkpoint import Checkpointer

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


class ObservedCheckpointer(Checkpointer):
    def __init__(self, path: str, every_s: float) -> None:
        super().__init__(path, every_s)
        self.done = threading.Event()

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        super().checkpoint(conn)
        self.done.set()


def test_checkpointer_copies_the_wal_back_while_writers_go_on(tmp_path):
    path = tmp_path / "votes.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("CREATE TABLE t (payload BLOB)")
    for _ in range(ROWS):
        writer.execute(f"INSERT INTO t VALUES (randomblob({ROW_BYTES}))")
    assert not in_database_file(path)

    checkpointer = ObservedCheckpointer(str(path), every_s=0.01)
    checkpointer.start()
    try:
        assert checkpointer.done.wait(timeout=10)
        assert in_database_file(path)
        # PASSIVE checkpoints never hold writers up: this insert does not wait for any lock.
        writer.execute("PRAGMA busy_timeout=0")
        writer.execute(f"INSERT INTO t VALUES (randomblob({ROW_BYTES}))")
    finally:
        checkpointer.stop()
        writer.close()
