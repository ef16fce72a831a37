"""Group fsync of SQLite's write-ahead log, outside the write lock.

Group commits run with `synchronous=NORMAL`: COMMIT appends the transaction's frames to the WAL
and releases SQLite's write lock without waiting for the disk. No receipt goes out until this
module has fsynced the WAL file after that COMMIT: fsync makes every write to the file that came
before it durable, whichever descriptor made it, so one fsync covers every commit that finished
before it began. Meanwhile the next batch (or another worker's) holds the lock, where with
`synchronous=FULL` it would wait for this fsync: the disk's latency is no longer inside the lock.

Why this is as durable as FULL: a committed transaction's frames stay in the WAL until a
checkpoint copies them into the database, and with NORMAL SQLite fsyncs the WAL before every
checkpoint and the database after it. So the frames are in the WAL (which this fsync covers)
or already in the synced database file. A WAL file that is gone was checkpointed and deleted by
the last connection to close, after syncing the database.

A failed fsync is final for this process, as in PostgreSQL: the kernel may have dropped the pages
it could not write, so a later fsync that succeeds proves nothing about them. Every later commit
is refused its receipts and /readyz reports the failure, until the worker is restarted and
SQLite recovers from what is really on disk.
"""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger("app.wal_sync")


class WalSync:
    def __init__(self, database_path: str) -> None:
        self.wal_path = f"{database_path}-wal"
        self.fsyncs = 0
        # One thread of its own: the default executor may be busy with slower work.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wal-fsync")
        self._running: asyncio.Future[None] | None = None
        self._next: asyncio.Future[None] | None = None
        self.failure: BaseException | None = None
        """The first fsync error, if any: from then on nothing here counts as durable."""

    def after_commit(self) -> asyncio.Future[None]:
        """Resolves once an fsync of the WAL that began after this call has finished (or fails
        with its error). Call it right after COMMIT returns."""
        if self.failure is not None:
            failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            failed.set_exception(self.failure)
            return failed
        waiting = self._next
        if waiting is None:
            waiting = self._next = asyncio.get_running_loop().create_future()
            if self._running is None:
                self._start()
        return waiting

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    def _start(self) -> None:
        waiting, self._next = self._next, None
        assert waiting is not None
        loop = asyncio.get_running_loop()
        self._running = running = loop.run_in_executor(self._executor, self._fsync)
        running.add_done_callback(lambda done: self._finished(done, waiting))

    def _finished(self, done: asyncio.Future[None], waiting: asyncio.Future[None]) -> None:
        self._running = None
        if not waiting.done():
            error = None if done.cancelled() else done.exception()
            if done.cancelled():
                waiting.cancel()
            elif error is not None:
                if self.failure is None:
                    log.critical("fsync of %s failed (%s): no receipt until this worker restarts", self.wal_path, error)
                self.failure = self.failure or error
                waiting.set_exception(error)
            else:
                waiting.set_result(None)
        if self._next is not None:  # commits that finished while this fsync ran
            if self.failure is not None:
                later, self._next = self._next, None
                later.set_exception(self.failure)
            else:
                self._start()

    def _fsync(self) -> None:
        try:
            fd = os.open(self.wal_path, os.O_RDONLY)
        except FileNotFoundError:
            return  # checkpointed and deleted, the database synced first (see above)
        try:
            os.fdatasync(fd)
        finally:
            os.close(fd)
        self.fsyncs += 1
