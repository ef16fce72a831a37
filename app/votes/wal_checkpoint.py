"""SQLite WAL checkpoints, taken off the write path.

By default the connection whose commit grows the WAL past 1,000 pages copies it back into the
database file, inside that commit: tens of milliseconds during which the event loop (where
group commits run) serves no one. Group-commit connections turn that off, and this thread
checkpoints instead, in PASSIVE mode, which never blocks writers or readers.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

CHECKPOINT_EVERY_S = 1.0

log = logging.getLogger(__name__)


class Checkpointer:
    def __init__(self, path: str, every_s: float = CHECKPOINT_EVERY_S) -> None:
        self.path = path
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        # Another worker's checkpointer may be running: SQLite then skips this one, which is fine.
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            while not self._stop.wait(self.every_s):
                try:
                    self.checkpoint(conn)
                except sqlite3.Error as error:  # the next round tries again; the WAL only grows meanwhile
                    log.warning("WAL checkpoint failed: %s", error)
            self.checkpoint(conn)
        finally:
            conn.close()
