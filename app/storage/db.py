"""The database handle: one async engine, with durable SQLite settings.

Group commits write through their own engine (app/votes/commit_engine.py); everything else
reads here, and writes here in short transactions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from app.storage.files import make_private_dir, make_private_file
from app.storage.sqlite_files import SqliteFiles

SQLITE_BUSY_TIMEOUT_MS = 10_000  # other processes (workers, CLI) may hold the write lock briefly
WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024
# The writer's page cache. SQLite's default (2 MiB) holds the votes table's unique indexes only for
# the first few hundred thousand votes; past that every insert into them (random keys) reads pages
# back from the OS, and a poll's pace falls the longer it runs. Allocated as pages are used.
WRITER_CACHE_KIB = 64 * 1024
"""journal_size_limit: a WAL that grew past this (while a long read held checkpoints back) is cut
back to it once it is reset (app/votes/wal_checkpoint.py keeps it well below under load)."""


class Database:
    """Reads run concurrently; writes are short transactions that take the write lock up front."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.engine: AsyncEngine = create_async_engine(url, pool_pre_ping=not self.is_sqlite)
        self.sqlite_files: SqliteFiles | None = None
        """The database file and WAL this process opened (SQLite only): see app/storage/sqlite_files.py."""
        if self.is_sqlite:
            _make_parent_dir(url)
            path = self.sqlite_path
            if path and path != ":memory:":
                self.sqlite_files = SqliteFiles(path)
            configure_sqlite(self.engine.sync_engine, files=self.sqlite_files)

    @property
    def sqlite_path(self) -> str | None:
        """The SQLite database file, None on PostgreSQL."""
        return make_url(self.url).database if self.is_sqlite else None

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that is committed, to disk, when the block exits without an error."""
        async with self.engine.connect() as conn:
            if self.is_sqlite:
                # SQLite's lock up front: a transaction never fails mid-way on a lock upgrade.
                await conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
            async with conn.begin():
                yield conn

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def _make_parent_dir(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:":
        # Created before SQLite opens it, so that the ballots (and the WAL and -shm) are 0600.
        make_private_dir(Path(database).parent)
        make_private_file(Path(database))


def configure_sqlite(
    engine: Engine,
    *,
    files: SqliteFiles | None = None,
    autocheckpoint: bool = True,
    fsync_by_wal_sync: bool = False,
    cache_kib: int | None = None,
) -> None:
    # pysqlite's own transaction handling would defer BEGIN and skip it for PRAGMAs; take control so
    # that write transactions start with BEGIN IMMEDIATE and never fail mid-way on a lock upgrade.
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is fsynced before it returns, so a receipt means the vote is on disk.
        # NORMAL only where app/votes/wal_sync.py fsyncs the WAL after each commit, before any receipt.
        cursor.execute(f"PRAGMA synchronous={'NORMAL' if fsync_by_wal_sync else 'FULL'}")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        if not autocheckpoint:  # app/votes/wal_checkpoint.py does it, off the event loop
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
        if cache_kib is not None:
            cursor.execute(f"PRAGMA cache_size=-{cache_kib}")  # negative: KiB, not pages
        cursor.close()
        if files is not None:
            files.remember()  # the files as first opened: what every later check compares with

    @event.listens_for(engine, "begin")
    def on_begin(conn: Any) -> None:
        conn.exec_driver_sql(conn.get_execution_options().get("sqlite_begin", "BEGIN"))
