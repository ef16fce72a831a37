"""SQLite WAL checkpoints, taken off the write path, that keep the WAL bounded under any load.

By default the connection whose commit grows the WAL past 1,000 pages copies it back into the
database file, inside that commit: tens of milliseconds during which the event loop (where
group commits run) serves no one. Group-commit connections turn that off, and a helper process
of its own checkpoints instead (app/core/helper_process.py; a thread in the worker would wait
for the busy loop's GIL at every step, with the write lock held). Each round, every
CHECKPOINT_EVERY_S:

- a PASSIVE checkpoint, which never blocks writers or readers. It copies most of the WAL back,
  but under sustained writes it never catches up with the newest commit, and SQLite starts the
  WAL over from its beginning only once every frame is copied: alone, it lets the file grow for
  as long as the load lasts (3 GB in a minute);
- so once the WAL holds WAL_RESTART_BYTES of frames, or when no one has committed for IDLE_S, a
  checkpoint that completes: more PASSIVE ones first, until few frames are left, then it takes the
  workers' write lock (the file lock of app/votes/commit_engine.py, on which group commits queue
  and wake at once), copies those last frames and RESTARTs the WAL (TRUNCATEs it when idle).
  Group commits wait for that tail only; the fsyncs of the commits already made go on meanwhile.

Receipts stay safe (app/votes/wal_sync.py): SQLite fsyncs the WAL before a checkpoint and the
database after it, and only then resets or truncates the WAL, in place (the same file). A commit
whose WAL fsync comes after that reset is in the synced database file already.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

from app.core.helper_process import HelperProcess, copy_outcome
from app.storage.sqlite_files import Identity, SqliteFiles, identity_of
from app.votes import helper_worker

CHECKPOINT_EVERY_S = 0.5
WAL_RESTART_BYTES = 16 * 1024 * 1024
"""A WAL that holds this many bytes of frames is checkpointed to its end and started over."""
TAIL_FRAMES = 256
CATCH_UP_ROUNDS = 4
"""Before the write lock is taken, PASSIVE checkpoints run back to back (at most this many) until
at most TAIL_FRAMES are left to copy: the commits wait for those only."""
IDLE_S = 1.0
"""No commit for this long, by any worker, is an idle moment: the WAL is emptied."""
BUSY_TIMEOUT_MS = 100
"""How long a completing checkpoint waits for readers to leave the WAL (they take milliseconds)."""
ROUND_TIMEOUT_S = 60.0
"""A round copies at most a few seconds of writes; past this, the helper is taken for hung."""

log = logging.getLogger(__name__)


class WalCheckpoints:
    """The checkpoint rounds of one database, with their own connection: in the checkpoint helper
    process, or on a thread of the worker should the helper fail."""

    def __init__(
        self,
        path: str,
        lock_path: str | None,
        restart_bytes: int = WAL_RESTART_BYTES,
        identities: list[Identity] | None = None,
    ) -> None:
        self.path = path
        self.lock_path = lock_path
        self.identities = identities
        """The database's and the WAL's, as the worker opened them: a connection first opened
        after the WAL was deleted would make SQLite create another one, hiding the loss."""
        self.restart_bytes = restart_bytes
        self._conn: sqlite3.Connection | None = None
        self._frame_bytes = 0
        self._frames_seen = 0
        self._frames_changed_at = time.monotonic()
        self._restarted_at = -1

    def round(self) -> int:
        """One round; returns the frames in the WAL after it (-1 if it failed: the next one tries
        again, and the WAL only grows meanwhile)."""
        try:
            return self._round(self._connection())
        except sqlite3.Error as error:
            log.warning("WAL checkpoint failed: %s", error)
            return -1

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            if self.identities is not None and [identity_of(self.path), identity_of(f"{self.path}-wal")] != [
                tuple(identity) for identity in self.identities
            ]:
                raise sqlite3.OperationalError("the database or its WAL is not the file the service opened")
            # mode=rw: a database deleted under the service must not come back empty from here.
            uri = f"file:{quote(self.path)}?mode=rw"
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self._frame_bytes = conn.execute("PRAGMA page_size").fetchone()[0] + 24  # a page and its header
            self._conn = conn
        return self._conn

    def _round(self, conn: sqlite3.Connection) -> int:
        # Another worker's checkpointer may be running: SQLite then skips this one, which is fine.
        _, frames, _ = _checkpoint(conn, "PASSIVE")
        now = time.monotonic()
        if frames != self._frames_seen:  # a commit since the last round, by any worker
            self._frames_seen, self._frames_changed_at = frames, now
        if frames <= 0:
            return max(frames, 0)
        if now - self._frames_changed_at >= IDLE_S:
            return self._complete(conn, "TRUNCATE")
        # Frames, not the file's size: after a restart the file keeps its size (journal_size_limit
        # caps it) while new frames are written from its beginning.
        if frames != self._restarted_at and frames * self._frame_bytes >= self.restart_bytes:
            for _ in range(CATCH_UP_ROUNDS):
                _, frames, copied = _checkpoint(conn, "PASSIVE")
                if frames - copied <= TAIL_FRAMES:
                    break
            return self._complete(conn, "RESTART")
        return frames

    def _complete(self, conn: sqlite3.Connection, mode: str) -> int:
        """A checkpoint to the WAL's last frame, then the WAL starts over: under the workers'
        write lock, so that no group commit appends meanwhile."""
        lock = self._lock()
        try:
            busy, frames, _ = _checkpoint(conn, mode)
        finally:
            if lock is not None:
                os.close(lock)  # closing the descriptor releases the lock
        # After a RESTART the count stays as it was until the next commit starts the WAL over: if
        # none comes, the idle round truncates it. After a TRUNCATE it is 0.
        self._restarted_at = -1 if busy else frames
        return frames

    def _lock(self) -> int | None:
        if self.lock_path is None:
            return None
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd


def _checkpoint(conn: sqlite3.Connection, mode: str) -> tuple[int, int, int]:
    """(busy, frames in the WAL, frames copied into the database)."""
    return conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()


class Checkpointer:
    """Runs a checkpoint round every `every_s` from the first commit on, in a helper process."""

    def __init__(
        self,
        path: str,
        lock_path: str | None = None,
        *,
        every_s: float = CHECKPOINT_EVERY_S,
        use_helper: bool = True,
        files: SqliteFiles | None = None,
    ) -> None:
        self.path = path
        self.lock_path = lock_path
        self.files = files
        """The files as the worker opened them, when known: no round opens another (WalCheckpoints)."""
        self.every_s = every_s
        self.rounds = 0
        """Rounds finished (in the helper or here)."""
        self.process = HelperProcess(
            "WAL checkpoint", helper_worker.MODULE, enabled=use_helper, timeout_s=ROUND_TIMEOUT_S
        )
        self._here: WalCheckpoints | None = None  # should the helper fail
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wal-checkpoint")
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Starts the rounds (call it on the event loop); does nothing if they run already."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="wal-checkpoint")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])
            self._task = None
        await self.process.close()
        await asyncio.to_thread(self._executor.shutdown)
        if self._here is not None:
            self._here.close()

    async def round(self) -> int:
        """One round now; the frames in the WAL after it."""
        frames = await self.process.submit(
            ["checkpoint", self.path, self.lock_path, self._identities()],
            expected_bytes=8,
            parse=lambda answer: int.from_bytes(answer, "big", signed=True),
            fallback=self._round_here,
        )
        self.rounds += 1
        return frames

    async def _run(self) -> None:
        await self.process.start()  # else the first rounds, while it starts, would run here
        while True:
            await asyncio.sleep(self.every_s)
            await self.round()

    def _identities(self) -> list[Identity] | None:
        files = self.files
        if files is None or files.database is None or files.wal is None:
            return None
        return [files.database, files.wal]

    def _round_here(self, future: asyncio.Future[int]) -> None:
        if self._here is None:
            self._here = WalCheckpoints(self.path, self.lock_path, identities=self._identities())
        on_thread = asyncio.get_running_loop().run_in_executor(self._executor, self._here.round)
        on_thread.add_done_callback(lambda done: copy_outcome(done, future))
