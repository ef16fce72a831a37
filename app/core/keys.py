"""The service's receipt signing keys: generated on first start, kept under the data dir (0600).

Every key file in `{data_dir}/receipt-keys/` is published at GET /api/v1/keys, so receipts
signed before a rotation still verify. The newest file signs new receipts. A fleet keeps its keys
in the database instead, sealed (app/storage/sealed_keys.py); a ring is then refreshed in place.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec
from nacl.signing import SigningKey

from app.core.protocol import b64encode

KEY_DIR_NAME = "receipt-keys"
LOG_KEY_DIR_NAME = "log-keys"  # the ballot log's (app/ballot_log/log_keys.py)
KEY_SUFFIX = ".key"
KID_BYTES = 9  # 12 base64url characters: short, and collisions need 2**36 keys


@dataclass(frozen=True, slots=True)
class ReceiptKey:
    kid: str
    signing_key: SigningKey
    active_from_ms: int = 0
    """When it may start signing: a fleet publishes a rotated key on every node before any signs."""

    @property
    def public_key(self) -> bytes:
        return bytes(self.signing_key.verify_key)

    def sign(self, message: bytes) -> bytes:
        return self.signing_key.sign(message).signature


class PublicKeyInfo(msgspec.Struct):
    kid: str
    alg: str
    public_key: str
    active: bool


class KeyRing:
    """The keys, oldest first; the active one is the newest whose time has come.

    Replaced in place (`replace`) when a fleet's keys change. The active key follows the clock, not
    the refresh: every node switches to a rotated key at the same instant (app/storage/sealed_keys.py).
    """

    def __init__(self, keys: list[ReceiptKey]) -> None:
        self.replace(keys)

    def replace(self, keys: list[ReceiptKey]) -> None:
        if not keys or keys[0].active_from_ms > _now_ms():
            raise ValueError("a key ring needs at least one key it may sign with")
        self.keys = list(keys)  # one assignment: a reader sees the old ring or the new one, whole

    @property
    def active(self) -> ReceiptKey:
        """Read once per group commit and per checkpoint: a few keys, scanned from the newest."""
        keys, now_ms = self.keys, _now_ms()
        return next((key for key in reversed(keys) if key.active_from_ms <= now_ms), keys[0])

    def public_keys(self) -> list[PublicKeyInfo]:
        active = self.active
        return [
            PublicKeyInfo(kid=k.kid, alg="Ed25519", public_key=b64encode(k.public_key), active=k is active)
            for k in self.keys
        ]


def _now_ms() -> int:
    return int(time.time() * 1000)


def kid_for(public_key: bytes) -> str:
    return b64encode(hashlib.sha256(public_key).digest()[:KID_BYTES])


def load_or_create(data_dir: Path, dir_name: str = KEY_DIR_NAME) -> KeyRing:
    """The ring of keys in `{data_dir}/{dir_name}/`; the ballot log's keys live beside the receipts'."""
    key_dir = data_dir / dir_name
    key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Workers starting together must agree on one first key, not make one each.
    with open(key_dir / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _key_files(key_dir):
            rotate(data_dir, dir_name)
        return KeyRing([_read_key(path) for path in _key_files(key_dir)])


def rotate(data_dir: Path, dir_name: str = KEY_DIR_NAME) -> ReceiptKey:
    """Makes a new active key; old keys stay published."""
    key_dir = data_dir / dir_name
    key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = SigningKey.generate()
    # The name sorts by creation time, so the newest key is the last one.
    path = key_dir / f"{time.time_ns():020d}{KEY_SUFFIX}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(bytes(key))
        file.flush()
        os.fsync(file.fileno())
    return ReceiptKey(kid=kid_for(bytes(key.verify_key)), signing_key=key)


def file_seeds(data_dir: Path, dir_name: str = KEY_DIR_NAME) -> list[tuple[int, bytes]]:
    """The (creation time in ns, seed) of each key file, oldest first: what a fleet imports."""
    files = _key_files(data_dir / dir_name)
    return [(int(p.stem) if p.stem.isdigit() else n, _read_key(p).signing_key.encode()) for n, p in enumerate(files)]


def key_of_seed(seed: bytes, active_from_ms: int = 0) -> ReceiptKey:
    key = SigningKey(seed)
    return ReceiptKey(kid=kid_for(bytes(key.verify_key)), signing_key=key, active_from_ms=active_from_ms)


def _key_files(key_dir: Path) -> list[Path]:
    return sorted(key_dir.glob(f"*{KEY_SUFFIX}"))


def _read_key(path: Path) -> ReceiptKey:
    seed = path.read_bytes()
    if len(seed) != 32:
        raise ValueError(f"{path}: expected a 32-byte Ed25519 seed, found {len(seed)} bytes")
    return key_of_seed(seed)
