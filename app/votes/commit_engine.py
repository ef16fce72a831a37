"""Write transactions for group commits: on SQLite, the commit engine of the whole service.

SQLite: group commits use a plain sqlite3 connection on the event loop's thread, commit with
`synchronous=NORMAL`, and fsync the WAL themselves, outside the write lock (app/votes/wal_sync.py);
WAL checkpoints run in a helper process (app/votes/wal_checkpoint.py). Across worker processes
sharing one file, writers queue on a file lock. PostgreSQL: an ordinary transaction of the
database handle, durable when COMMIT returns.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import OperationalError

from app.storage.db import SQLITE_BUSY_TIMEOUT_MS, WRITER_CACHE_KIB, Database, configure_sqlite
from app.votes.wal_checkpoint import Checkpointer
from app.votes.wal_sync import WalSync

T = TypeVar("T")
RunInTransaction = Callable[[Callable[[Connection], Any]], Awaitable[Any]]
"""Calls a function with the transaction's connection (inside CommitEngine.commit)."""


class CommitEngine:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.commits = 0
        """Write transactions committed here: with group commit, far fewer than votes."""
        self._write_lock: asyncio.Lock | None = None
        self._lock_path: str | None = None
        self._sync_engine: Engine | None = None
        self._checkpointer: Checkpointer | None = None
        self._wal_sync: WalSync | None = None
        files = db.sqlite_files
        if files is not None:
            # One SQLite writer at a time anyway: queueing here is cheaper than spinning on SQLITE_BUSY.
            self._write_lock = asyncio.Lock()
            self._lock_path = f"{files.path}.write-lock"
            self._sync_engine = create_engine(make_url(db.url).set(drivername="sqlite+pysqlite"))
            configure_sqlite(
                self._sync_engine,
                files=files,
                autocheckpoint=False,
                fsync_by_wal_sync=True,
                cache_kib=WRITER_CACHE_KIB,
            )
            self._checkpointer = Checkpointer(files.path, self._lock_path, files=files)
            self._wal_sync = WalSync(files)

    async def commit(self, work: Callable[[RunInTransaction], Awaitable[T]]) -> tuple[T, asyncio.Future[None]]:
        """Runs `work` in one write transaction and commits it; the future resolves once the
        commit is on disk. Nothing may be promised on it before then.

        `work` gets a `run(fn)` that calls `fn(connection)` inside the transaction, and may await
        other things in between. On SQLite, `fn` runs right here, on the event loop's thread:
        its statements take tens of microseconds, while on a thread of its own it would wait for
        the GIL at every call into SQLite. COMMIT runs here too, as it no longer waits for the
        disk: the WAL is fsynced after the write lock is released (app/votes/wal_sync.py), so the next
        transaction can start meanwhile. Only waiting for another worker's lock leaves the loop.
        """
        if self._sync_engine is None:
            async with self.db.write() as conn:
                result = await work(conn.run_sync)
            self.commits += 1
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return result, done
        assert self._write_lock is not None
        if (failure := self.durability_failure) is not None:
            # Final for this process: no transaction either, since the file it would write to may
            # be another database now (a restored copy), whose rows are not this service's to change.
            raise failure
        async with self._write_lock:
            lock = self._try_lock_file()
            if lock is None:  # another worker is committing
                lock = await _finish_even_if_cancelled(self._lock_file, on_cancel=_unlock_file)
            try:
                try:
                    return await self._commit_sqlite(work, busy_timeout_ms=0)
                except OperationalError as error:
                    if getattr(error.orig, "sqlite_errorcode", None) != sqlite3.SQLITE_BUSY:
                        raise
                # A writer outside the group commit holds SQLite's lock: wait for it, off the loop.
                return await self._commit_sqlite(work, busy_timeout_ms=SQLITE_BUSY_TIMEOUT_MS)
            finally:
                _unlock_file(lock)

    @property
    def write_lock_path(self) -> str | None:
        """The file lock on which every SQLite writer of the service queues (None on PostgreSQL)."""
        return self._lock_path

    async def durable(self) -> None:
        """Returns once everything committed so far is on disk, whichever process committed it."""
        if self._wal_sync is not None:
            await self._wal_sync.after_commit()

    @property
    def durability_failure(self) -> BaseException | None:
        """The failed fsync or lost database file that ended durable writes in this process, if any."""
        return None if self._wal_sync is None else self._wal_sync.failure

    def check_files(self) -> BaseException | None:
        """Checks now (two stats) that the database and its WAL are the files this process
        opened; a lost one ends durable writes here, as a failed fsync does. Returns the failure
        that ended them, if any. The WAL fsync checks the same before each receipt."""
        if self._wal_sync is None:
            return None
        if self._wal_sync.failure is None and (lost := self._wal_sync.files.lost()) is not None:
            self._wal_sync.fail(lost)
        return self._wal_sync.failure

    async def close(self) -> None:
        if self._sync_engine is not None:
            self._sync_engine.dispose()
        if self._checkpointer is not None:
            await self._checkpointer.stop()
        if self._wal_sync is not None:
            await self._wal_sync.close()

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

    # Across worker processes sharing one SQLite file, group commits queue on a file lock:
    # SQLite's own busy handler sleeps in growing steps (up to 100 ms), an flock waiter wakes at once.
    def _lock_file(self) -> int:
        """Waits for the lock (blocking: call it off the loop)."""
        assert self._lock_path is not None
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
