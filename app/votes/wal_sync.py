"""Group fsync of SQLite's write-ahead log, outside the write lock.

Group commits run with `synchronous=NORMAL`: COMMIT appends the transaction's frames to the WAL
and releases SQLite's write lock without waiting for the disk. No receipt goes out until this
module has fsynced the WAL file after that COMMIT: fsync makes every write to the file that came
before it durable, whichever descriptor made it, so one fsync covers every commit that finished
before it began. Meanwhile the next batch (or another worker's) holds the lock, where with
`synchronous=FULL` it would wait for this fsync: the disk's latency is no longer inside the lock.

Why this is as durable as FULL: a committed transaction's frames stay in the WAL until a
checkpoint copies them into the database, and with NORMAL SQLite fsyncs the WAL before every
checkpoint and the database after it; only then may the WAL be reset or truncated
(app/votes/wal_checkpoint.py), in place. So the frames are in the WAL (which this fsync covers)
or already in the synced database file.

That holds for the files this process opened, and only for them: the fsync goes by path, and
checks first that the WAL and the database are still the files the service opened
(app/storage/sqlite_files.py). A file deleted or replaced under the service is not an empty WAL
to skip: SQLite still writes to the old inode, which a restart never finds.

A failed fsync is final for this process, as in PostgreSQL: the kernel may have dropped the pages
it could not write, so a later fsync that succeeds proves nothing about them. So is a lost file.
Every later commit is refused its receipts and /readyz reports the failure, until the worker is
restarted and SQLite recovers from what is really on disk.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from concurrent.futures import ThreadPoolExecutor

from app.core.helper_process import HelperProcess, copy_outcome
from app.storage.sqlite_files import DatabaseFileLost, SqliteFiles
from app.votes import helper_worker
from app.votes.helper_worker import DATABASE_FILE, WAL_FILE, sync_wal

log = logging.getLogger(__name__)


class WalSync:
    """The fsync goes to a helper process of its own (app/core/helper_process.py): a thread's result
    would wait for the GIL, held by the busy event loop, for a millisecond or more each way."""

    def __init__(self, files: SqliteFiles, *, use_helper: bool = True) -> None:
        self.files = files
        self.process = HelperProcess("WAL fsync", helper_worker.MODULE, enabled=use_helper)
        # Should the helper fail: a thread of its own, as the default executor may be busy.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wal-fsync")
        self._running: asyncio.Future[tuple[int, int]] | None = None
        self._next: asyncio.Future[None] | None = None
        self.failure: BaseException | None = None
        """The first fsync error or lost file, if any: from then on nothing here counts as durable."""

    def fail(self, error: BaseException) -> None:
        """Ends durable writes in this process (a failed fsync, a lost file): final."""
        if self.failure is None:
            log.critical("%s: no receipt from this worker until it restarts", error)
            self.failure = error

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

    async def close(self) -> None:
        await self.process.close()
        await asyncio.to_thread(self._executor.shutdown)

    def _start(self) -> None:
        waiting, self._next = self._next, None
        assert waiting is not None
        files = self.files
        if files.wal is None or files.database is None:
            files.remember()  # once: a new database's WAL appears at its first commit
        unseen = DATABASE_FILE if files.database is None else WAL_FILE if files.wal is None else None
        if unseen is not None:  # right after a commit: the file was deleted
            running: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
            running.set_result((unseen, errno.ENOENT))
        else:
            running = self.process.submit(
                ["fdatasync", files.wal_path, files.wal, files.path, files.database],
                expected_bytes=8,
                parse=_failure_from,
                fallback=self._fsync_on_thread,
            )
        self._running = running
        running.add_done_callback(lambda done: self._finished(done, waiting))

    def _fsync_on_thread(self, future: asyncio.Future[tuple[int, int]]) -> None:
        files = self.files
        on_thread = asyncio.get_running_loop().run_in_executor(
            self._executor, sync_wal, files.wal_path, files.wal, files.path, files.database
        )
        on_thread.add_done_callback(lambda done: copy_outcome(done, future))

    def _finished(self, done: asyncio.Future[tuple[int, int]], waiting: asyncio.Future[None]) -> None:
        self._running = None
        error = _error_of(done, self.files)
        # A cancelled fsync (the service is stopping) proved nothing either way: not final.
        if error is not None and not done.cancelled():
            self.fail(error)
        if not waiting.done():
            if error is None:
                waiting.set_result(None)
            else:
                waiting.set_exception(error)
        if self._next is not None:  # commits that finished while this fsync ran
            if self.failure is not None:
                later, self._next = self._next, None
                later.set_exception(self.failure)
            else:
                self._start()


def _failure_from(answer: bytes) -> tuple[int, int]:
    return int.from_bytes(answer[:4], "big"), int.from_bytes(answer[4:], "big")


def _error_of(done: asyncio.Future[tuple[int, int]], files: SqliteFiles) -> BaseException | None:
    if done.cancelled():
        return asyncio.CancelledError()
    if done.exception() is not None:
        return done.exception()
    failed_file, code = done.result()
    if code == 0:
        return None
    path = files.path if failed_file == DATABASE_FILE else files.wal_path
    if code in (errno.ENOENT, errno.ESTALE):
        return DatabaseFileLost(code, os.strerror(code), path)
    return OSError(code, f"fsync failed: {os.strerror(code)}", path)
