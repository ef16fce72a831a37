"""The database handle: one async engine, durable SQLite settings, and write transactions."""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from app.wal import Checkpointer
from app.wal_sync import WalSync

SQLITE_BUSY_TIMEOUT_MS = 10_000  # other processes (workers, CLI) may hold the write lock briefly

T = TypeVar("T")
RunInTransaction = Callable[[Callable[[Connection], Any]], Awaitable[Any]]
"""Calls a function with the transaction's connection (inside Database.transact)."""


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
        self._checkpointer: Checkpointer | None = None
        self._wal_sync: WalSync | None = None
        if self.is_sqlite:
            _make_parent_dir(url)
            _configure_sqlite(self.engine.sync_engine)
            # One SQLite writer at a time anyway: queueing here is cheaper than spinning on SQLITE_BUSY.
            self._write_lock = asyncio.Lock()
            self._lock_path = f"{make_url(url).database}.write-lock"
            # Group commits use a plain sqlite3 connection on the event loop's thread (commit), and
            # fsync the WAL themselves, outside the write lock (app/wal_sync.py).
            self._sync_engine = create_engine(make_url(url).set(drivername="sqlite+pysqlite"))
            _configure_sqlite(self._sync_engine, autocheckpoint=False, fsync_by_wal_sync=True)
            self._checkpointer = Checkpointer(make_url(url).database or "")
            self._wal_sync = WalSync(make_url(url).database or "")

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that is committed, to disk, when the block exits without an error."""
        async with self._write_lock or nullcontext(), self.engine.connect() as conn:
            lock = await asyncio.to_thread(self._lock_file) if self.is_sqlite else None
            try:
                if self.is_sqlite:
                    await conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
                async with conn.begin():
                    yield conn
                self.commits += 1
            finally:
                _unlock_file(lock)

    async def commit(self, work: Callable[[RunInTransaction], Awaitable[T]]) -> tuple[T, asyncio.Future[None]]:
        """Runs `work` in one write transaction and commits it; the future resolves once the
        commit is on disk. Nothing may be promised on it before then.

        `work` gets a `run(fn)` that calls `fn(connection)` inside the transaction, and may await
        other things in between. On SQLite, `fn` runs right here, on the event loop's thread:
        its statements take tens of microseconds, while on a thread of its own it would wait for
        the GIL at every call into SQLite. COMMIT runs here too, as it no longer waits for the
        disk: the WAL is fsynced after the write lock is released (app/wal_sync.py), so the next
        transaction can start meanwhile. Only waiting for another worker's lock leaves the loop.
        """
        if self._sync_engine is None:
            async with self.write() as conn:
                result = await work(conn.run_sync)
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return result, done
        async with self._write_lock or nullcontext():
            lock = self._try_lock_file()
            if lock is None:  # another worker is committing
                lock = await _finish_even_if_cancelled(self._lock_file, on_cancel=_unlock_file)
            try:
                try:
                    return await self._commit_sqlite(work, busy_timeout_ms=0)
                except OperationalError as error:
                    if getattr(error.orig, "sqlite_errorcode", None) != sqlite3.SQLITE_BUSY:
                        raise
                # A writer outside this service holds SQLite's lock: wait for it, off the loop.
                return await self._commit_sqlite(work, busy_timeout_ms=SQLITE_BUSY_TIMEOUT_MS)
            finally:
                _unlock_file(lock)

    async def durable(self) -> None:
        """Returns once everything committed so far is on disk."""
        if self._wal_sync is not None:
            await self._wal_sync.after_commit()

    async def _commit_sqlite(
        self, work: Callable[[RunInTransaction], Awaitable[T]], busy_timeout_ms: int
    ) -> tuple[T, asyncio.Future[None]]:
        assert self._sync_engine is not None
        assert self._checkpointer is not None
        assert self._wal_sync is not None
        self._checkpointer.start()
        with self._sync_engine.connect() as conn:
            conn.connection.driver_connection.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
            conn = conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
            transaction = conn.begin() if busy_timeout_ms == 0 else await asyncio.to_thread(conn.begin)

            async def run(fn: Callable[[Connection], Any]) -> Any:
                return fn(conn)

            try:
                result = await work(run)
            except BaseException:
                transaction.rollback()
                raise
            transaction.commit()
            durable = self._wal_sync.after_commit()
        self.commits += 1
        return result, durable

    # Across worker processes sharing one SQLite file, writers queue on a file lock: SQLite's own
    # busy handler sleeps in growing steps (up to 100 ms), an flock waiter wakes at once. Each
    # holder opens its own descriptor, so group commits and this worker's other writes (write())
    # exclude each other too.
    def _lock_file(self) -> int | None:
        """Waits for the lock (blocking: call it off the loop)."""
        if self._lock_path is None:
            return None
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    def _try_lock_file(self) -> int | None:
        """The lock if no one holds it, else None at once."""
        assert self._lock_path is not None
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    @property
    def durability_failure(self) -> BaseException | None:
        """The fsync failure that ended durable writes in this process, if one did."""
        return None if self._wal_sync is None else self._wal_sync.failure

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._sync_engine is not None:
            self._sync_engine.dispose()
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.stop)
        if self._wal_sync is not None:
            await self._wal_sync.close()


async def _finish_even_if_cancelled(blocking: Callable[[], T], on_cancel: Callable[[T], None] | None = None) -> T:
    """Runs `blocking` on a thread; if the caller is cancelled meanwhile, it still waits for the
    thread to finish (and hands its result to `on_cancel`) before the cancellation goes on."""
    running = asyncio.ensure_future(asyncio.to_thread(blocking))
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        await asyncio.wait([running])
        if on_cancel is not None and not running.cancelled() and running.exception() is None:
            on_cancel(running.result())
        raise


def _unlock_file(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)  # closing the descriptor releases the lock


def _make_parent_dir(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite(engine: Engine, *, autocheckpoint: bool = True, fsync_by_wal_sync: bool = False) -> None:
    # pysqlite's own transaction handling would defer BEGIN and skip it for PRAGMAs; take control so
    # that write transactions start with BEGIN IMMEDIATE and never fail mid-way on a lock upgrade.
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is fsynced before it returns, so a receipt means the vote is on disk.
        # NORMAL only where app.wal_sync fsyncs the WAL after each commit, before any receipt.
        cursor.execute(f"PRAGMA synchronous={'NORMAL' if fsync_by_wal_sync else 'FULL'}")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        if not autocheckpoint:  # app.wal.Checkpointer does it, off the event loop
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Any) -> None:
        conn.exec_driver_sql(conn.get_execution_options().get("sqlite_begin", "BEGIN"))
