"""Files that hold ballots or secrets: created private (0700 directories, 0600 files) whatever the umask.

Only what this service creates is made private; a directory or file that already exists keeps
the mode its owner gave it.
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def make_private_dir(path: Path) -> None:
    """Creates `path` as a 0700 directory unless it exists; missing parents get the usual mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=PRIVATE_DIR_MODE)
    except FileExistsError:
        return
    # mkdir's mode is narrowed by the umask; chmod is not, so the mode is exactly this one.
    path.chmod(PRIVATE_DIR_MODE)


def make_private_file(path: Path) -> None:
    """Creates `path` as an empty 0600 file unless it exists.

    SQLite gives a database's -wal and -shm files the database file's own mode, so creating the
    database file this way before SQLite opens it keeps all three private.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)
    finally:
        os.close(fd)
