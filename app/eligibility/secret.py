"""The key that hashes invitation codes and client addresses: made on first start in the data dir
(0600), like the receipt keys; a fleet keeps it in the database, sealed, with them
(app/storage/sealed_keys.py). A missing key is made; an empty or short
one stops the start, since a new one would make every issued invitation unknown."""

from __future__ import annotations

import fcntl
import os
import secrets
from pathlib import Path

from app.core.settings import Settings
from app.storage.db import Database
from app.storage.sealed_keys import ELIGIBILITY, SealedKeyStore

KEY_FILE = "eligibility-key"
KEY_BYTES = 32


class BadEligibilityKey(RuntimeError):
    """The key file exists but cannot be the key: the message names it and what is wrong."""


async def load(settings: Settings, db: Database) -> bytes:
    """The key of this node: the fleet's in the database (the data dir's, if any, imported first),
    or the data dir's when no key-encryption key is set."""
    store = SealedKeyStore.of(settings, db)
    if store is None:
        return load_or_create(settings.data_dir)
    path = settings.data_dir / KEY_FILE
    await store.ensure(ELIGIBILITY, lambda: [(0, _checked(path, path.read_bytes()))] if path.exists() else [])
    _, _, key = (await store.seeds(ELIGIBILITY))[0]
    return _checked(path, key)


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
    return _checked(path, key)


def _checked(path: Path, key: bytes) -> bytes:
    if len(key) != KEY_BYTES:
        raise BadEligibilityKey(
            f"{path}: expected {KEY_BYTES} random bytes, found {len(key)}; restore it from a backup "
            "(a new key would make every invitation issued so far unknown)"
        )
    return key
