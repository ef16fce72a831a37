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

from app.votes.helper_process import HelperProcess
from app.votes.helper_worker import fdatasync

log = logging.getLogger(__name__)


class WalSync:
    """The fsync goes to a helper process of its own (app/votes/helper_process.py): a thread's result
    would wait for the GIL, held by the busy event loop, for a millisecond or more each way."""

    def __init__(self, database_path: str, *, use_helper: bool = True) -> None:
        # Absolute: a missing file counts as synced (see above), so a wrong path must not happen.
        self.wal_path = f"{os.path.abspath(database_path)}-wal"
        self.process = HelperProcess("WAL fsync", enabled=use_helper)
        # Should the helper fail: a thread of its own, as the default executor may be busy.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wal-fsync")
        self._running: asyncio.Future[int] | None = None
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

    async def close(self) -> None:
        await self.process.close()
        await asyncio.to_thread(self._executor.shutdown)

    def _start(self) -> None:
        waiting, self._next = self._next, None
        assert waiting is not None
        self._running = running = self.process.submit(
            ["fdatasync", self.wal_path], expected_bytes=4, parse=_errno_from, fallback=self._fsync_on_thread
        )
        running.add_done_callback(lambda done: self._finished(done, waiting))

    def _fsync_on_thread(self, future: asyncio.Future[int]) -> None:
        on_thread = asyncio.get_running_loop().run_in_executor(self._executor, fdatasync, self.wal_path)
        on_thread.add_done_callback(lambda done: _copy_result(done, future))

    def _finished(self, done: asyncio.Future[int], waiting: asyncio.Future[None]) -> None:
        self._running = None
        error = _error_of(done, self.wal_path)
        # A cancelled fsync (the service is stopping) proved nothing either way: not final.
        if error is not None and self.failure is None and not done.cancelled():
            log.critical("fsync of %s failed (%s): no receipt until this worker restarts", self.wal_path, error)
            self.failure = error
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


def _errno_from(answer: bytes) -> int:
    return int.from_bytes(answer, "big")


def _error_of(done: asyncio.Future[int], path: str) -> BaseException | None:
    if done.cancelled():
        return asyncio.CancelledError()
    if done.exception() is not None:
        return done.exception()
    code = done.result()
    return None if code == 0 else OSError(code, os.strerror(code), path)


def _copy_result(source: asyncio.Future[int], target: asyncio.Future[int]) -> None:
    if target.done():
        return
    if source.cancelled():
        target.cancel()
    elif source.exception() is not None:
        target.set_exception(source.exception())  # type: ignore[arg-type]
    else:
        target.set_result(source.result())
