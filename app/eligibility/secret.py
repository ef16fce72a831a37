"""The key that hashes invitation codes and client addresses: made on first start in the data dir
(0600), like the receipt keys; nodes of one fleet share it. A missing key is made; an empty or short
one stops the start, since a new one would make every issued invitation unknown."""

from __future__ import annotations

import fcntl
import os
import secrets
from pathlib import Path

KEY_FILE = "eligibility-key"
KEY_BYTES = 32


class BadEligibilityKey(RuntimeError):
    """The key file exists but cannot be the key: the message names it and what is wrong."""


def load_or_create(data_dir: Path) -> bytes:
    path = data_dir / KEY_FILE
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Workers starting together must agree on one key, not make one each.
    with open(data_dir / f".{KEY_FILE}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as file:
                file.write(secrets.token_bytes(KEY_BYTES))
                file.flush()
                os.fsync(file.fileno())
        key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise BadEligibilityKey(
            f"{path}: expected {KEY_BYTES} random bytes, found {len(key)}; restore it from a backup "
            "(a new key would make every invitation issued so far unknown)"
        )
    return key
