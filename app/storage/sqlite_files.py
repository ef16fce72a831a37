"""The SQLite database file and its WAL, as this process opened them, and the disk they are on.

A file deleted or replaced under a running service takes every later commit with it: SQLite goes
on writing through the descriptors it holds, to an inode that no path names any more, and the next
start finds no database, or another one. So the process remembers each file's identity
(st_dev, st_ino) when it first sees it, and checks the files against it where it matters: with
every WAL fsync (app/votes/wal_sync.py) and in /readyz. While the service runs, the WAL is never
legitimately replaced: SQLite deletes it only when the last connection to the database closes,
and checkpoints reset or truncate it in place.
"""

from __future__ import annotations

import errno
import os

Identity = tuple[int, int]
"""(st_dev, st_ino): which file a path names."""

LOW_DISK_BYTES = 16 * 1024 * 1024
"""Below this much free space next to the database, /readyz reports the disk as full: a batch of
votes with its index pages, and the WAL between checkpoints, need a few megabytes to land."""


class DatabaseFileLost(OSError):
    """The database or its WAL is not the file this process opened: deleted or replaced."""

    def __str__(self) -> str:
        what = "deleted" if self.errno == errno.ENOENT else "replaced by another file"
        return f"{self.filename} was {what} while the service ran"


def identity_of(path: str) -> Identity | None:
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return None
    return status.st_dev, status.st_ino


class SqliteFiles:
    def __init__(self, path: str) -> None:
        # Absolute: the helper processes that check these paths may run in another directory.
        self.path = os.path.abspath(path)
        self.wal_path = f"{self.path}-wal"
        self.database: Identity | None = None
        self.wal: Identity | None = None
        """None until seen: SQLite creates the WAL at a new database's first write."""

    def remember(self) -> None:
        """Records the identity of each file not seen yet; a file seen once keeps its first
        identity. Called on every new connection, and before the first WAL fsync."""
        if self.database is None:
            self.database = identity_of(self.path)
        if self.wal is None:
            self.wal = identity_of(self.wal_path)

    def lost(self) -> DatabaseFileLost | None:
        """Whether a file seen earlier is now missing or another file (two stats)."""
        for path, remembered in ((self.path, self.database), (self.wal_path, self.wal)):
            if remembered is not None and (now := identity_of(path)) != remembered:
                code = errno.ENOENT if now is None else errno.ESTALE
                return DatabaseFileLost(code, os.strerror(code), path)
        return None

    def free_bytes(self) -> int:
        """Space left for unprivileged writes on the database's filesystem."""
        status = os.statvfs(os.path.dirname(self.path))
        return status.f_bavail * status.f_frsize

    def disk_full(self) -> str | None:
        """Why the disk counts as full, if it does (/readyz)."""
        free = self.free_bytes()
        if free >= LOW_DISK_BYTES:
            return None
        return f"The disk holding the database is full: {free // 1024} KiB free, {LOW_DISK_BYTES // 1024} KiB needed."
