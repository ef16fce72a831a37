"""The database handle: one async engine, durable SQLite settings, and write transactions."""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

SQLITE_BUSY_TIMEOUT_MS = 10_000  # other processes (workers, CLI) may hold the write lock briefly

T = TypeVar("T")


class Database:
    """Reads run concurrently; writes are short transactions that take the write lock up front."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.engine: AsyncEngine = create_async_engine(url, pool_pre_ping=not self.is_sqlite)
        self.commits = 0
        """Write transactions committed by this handle: with group commit, far fewer than votes."""
        self._write_lock: asyncio.Lock | None = None
        self._lock_path: str | None = None
        self._sync_engine: Engine | None = None
        self._writer: ThreadPoolExecutor | None = None
        if self.is_sqlite:
            _make_parent_dir(url)
            _configure_sqlite(self.engine.sync_engine)
            # One SQLite writer at a time anyway: queueing here is cheaper than spinning on SQLITE_BUSY.
            self._write_lock = asyncio.Lock()
            self._lock_path = f"{make_url(url).database}.write-lock"
            # Batched writes run start to finish on one thread with a plain sqlite3 connection: one
            # hand-off per transaction instead of one per statement, each of which waits for the GIL.
            self._sync_engine = create_engine(make_url(url).set(drivername="sqlite+pysqlite"))
            _configure_sqlite(self._sync_engine)
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that is committed, to disk, when the block exits without an error."""
        async with self._write_lock or nullcontext(), self.engine.connect() as conn:
            try:
                if self.is_sqlite:
                    await asyncio.to_thread(self._file_lock_acquire)
                    await conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
                async with conn.begin():
                    yield conn
                self.commits += 1
            finally:
                self._file_lock_release()

    async def run_write(self, work: Callable[[Connection], T]) -> T:
        """Runs `work` in one write transaction, committed (to disk) before this returns."""
        if self._writer is None:
            async with self.write() as conn:
                return await conn.run_sync(work)
        async with self._write_lock or nullcontext():
            result = await asyncio.get_running_loop().run_in_executor(self._writer, self._run_sqlite_write, work)
        self.commits += 1
        return result

    def _run_sqlite_write(self, work: Callable[[Connection], T]) -> T:
        assert self._sync_engine is not None
        with self._file_lock(), self._sync_engine.connect() as conn:
            conn = conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
            with conn.begin():
                return work(conn)

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        self._file_lock_acquire()
        try:
            yield
        finally:
            self._file_lock_release()

    # Across worker processes sharing one SQLite file, writers queue on a file lock: SQLite's own
    # busy handler sleeps in growing steps (up to 100 ms), an flock waiter wakes at once. The
    # in-process lock (or the single writer thread) means one holder per process at a time.
    _lock_fd: int | None = None

    def _file_lock_acquire(self) -> None:
        if self._lock_path is None:
            return
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._lock_fd = fd

    def _file_lock_release(self) -> None:
        if self._lock_fd is not None:
            fd, self._lock_fd = self._lock_fd, None
            os.close(fd)  # closing the descriptor releases the lock

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._sync_engine is not None:
            self._sync_engine.dispose()
        if self._writer is not None:
            self._writer.shutdown(wait=True)


def _make_parent_dir(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling would defer BEGIN and skip it for PRAGMAs; take control so
    # that write transactions start with BEGIN IMMEDIATE and never fail mid-way on a lock upgrade.
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is fsynced before it returns, so a receipt means the vote is on disk.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Any) -> None:
        conn.exec_driver_sql(conn.get_execution_options().get("sqlite_begin", "BEGIN"))
