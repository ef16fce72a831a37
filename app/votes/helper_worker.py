"""The helper process (app/core/helper_process.py): requests on stdin, answers on stdout, in order.

Each request is a 4-byte big-endian length and a msgpack array:
- `["verify", [[public_key, message, signature], ...]]`, answered with one byte per signature,
  1 if it verifies;
- `["sign", seed, [payload, ...]]`, answered with the 64-byte signatures, concatenated, made with
  the Ed25519 key of that 32-byte seed (the service's receipt key: this process is the
  service's own child, and keeps nothing on disk);
- `["fdatasync", wal_path, wal_identity, database_path, database_identity]`, answered with 8 bytes:
  which file failed (0 the WAL, 1 the database) and the errno, both 0 once the WAL's data is on
  disk. Each identity is the [st_dev, st_ino] the service opened (app/storage/sqlite_files.py): a
  file that is gone fails with ENOENT, another file under its path with ESTALE, as a failed
  fsync does: commits made through the descriptors SQLite holds would not survive a restart;
- `["checkpoint", database_path, lock_path, [database_identity, wal_identity] or None]`: one round of WAL checkpoints
  (app/votes/wal_checkpoint.py), answered with 8 bytes: the frames left in the WAL, signed (-1 if
  the round failed).
Each answer is a 4-byte length and those bytes. It imports nothing of the web stack, so it starts
in a few tens of milliseconds.
"""

from __future__ import annotations

import errno
import os
import sys
from typing import Any

from nacl.bindings import crypto_sign, crypto_sign_seed_keypair

from app.core.helper_process import serve
from app.core.protocol import SIGNATURE_BYTES, signature_verifies

MODULE = "app.votes.helper_worker"
_checkpoints: dict[str, Any] = {}
"""The checkpoint rounds of each database, by path: their connection and what they saw."""


def answer(request: list, secret_keys: dict[bytes, bytes]) -> bytes:
    if request[0] == "verify":
        return bytes(signature_verifies(*item) for item in request[1])
    if request[0] == "sign":
        seed, payloads = request[1], request[2]
        if seed not in secret_keys:
            secret_keys[seed] = crypto_sign_seed_keypair(seed)[1]
        secret_key = secret_keys[seed]
        return b"".join(crypto_sign(payload, secret_key)[:SIGNATURE_BYTES] for payload in payloads)
    if request[0] == "checkpoint":
        from app.votes.wal_checkpoint import WalCheckpoints  # only the checkpoint helper needs it

        path, lock_path, identities = request[1], request[2], request[3]
        if path not in _checkpoints:
            _checkpoints[path] = WalCheckpoints(path, lock_path, identities=identities)
        return _checkpoints[path].round().to_bytes(8, "big", signed=True)
    if request[0] == "fdatasync":
        failed_file, code = sync_wal(request[1], tuple(request[2]), request[3], tuple(request[4]))
        return failed_file.to_bytes(4, "big") + code.to_bytes(4, "big")
    raise ValueError(f"unknown request {request[0]!r}")


WAL_FILE, DATABASE_FILE = 0, 1


def sync_wal(
    wal_path: str, wal_identity: tuple[int, int], database_path: str, database_identity: tuple[int, int]
) -> tuple[int, int]:
    """(0, 0) once the WAL's data is on disk and both files are the ones the service opened;
    else which file failed and the errno (an unsigned code, to fit the answer)."""
    try:
        fd = os.open(wal_path, os.O_RDONLY)
    except OSError as error:
        return WAL_FILE, error.errno or errno.EIO
    try:
        status = os.fstat(fd)
        if (status.st_dev, status.st_ino) != wal_identity:
            return WAL_FILE, errno.ESTALE
        try:
            status = os.stat(database_path)
        except OSError as error:
            return DATABASE_FILE, error.errno or errno.EIO
        if (status.st_dev, status.st_ino) != database_identity:
            return DATABASE_FILE, errno.ESTALE
        os.fdatasync(fd)
    except OSError as error:
        return WAL_FILE, error.errno or errno.EIO
    finally:
        os.close(fd)
    return WAL_FILE, 0


if __name__ == "__main__":
    secret_keys: dict[bytes, bytes] = {}
    serve(lambda request: answer(request, secret_keys), sys.stdin.buffer, sys.stdout.buffer)
