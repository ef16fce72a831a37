"""The key-encryption key of a fleet: it seals the signing keys the nodes share through the database.

Every node reads the same key from a file (a mounted secret, VOTE_KEY_ENCRYPTION_KEY_FILE): 32
random bytes, base64. A key that is missing, empty, malformed or not the one that sealed the stored
keys stops the start: a node must never sign with a key the other nodes cannot publish.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from nacl.exceptions import CryptoError
from nacl.secret import SecretBox

SETTING = "VOTE_KEY_ENCRYPTION_KEY_FILE"
MAKE_ONE = "make one with `head -c 32 /dev/urandom | base64`"


class KeyEncryptionError(RuntimeError):
    """The key-encryption key cannot be used; the message names the file and what is wrong."""


class KeyEncryptionKey:
    def __init__(self, key: bytes, path: Path) -> None:
        self.box = SecretBox(key)
        self.path = path

    @classmethod
    def read(cls, path: Path) -> KeyEncryptionKey:
        try:
            text = path.read_bytes().strip()
        except OSError as error:
            raise KeyEncryptionError(f"{SETTING}: cannot read {path}: {error.strerror}") from None
        if not text:
            raise KeyEncryptionError(f"{SETTING}: {path} is empty; {MAKE_ONE}")
        try:
            key = base64.b64decode(text.replace(b"-", b"+").replace(b"_", b"/"), validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != SecretBox.KEY_SIZE:
            raise KeyEncryptionError(f"{SETTING}: {path} must hold 32 random bytes in base64; {MAKE_ONE}")
        return cls(key, path)

    def seal(self, secret: bytes) -> bytes:
        return bytes(self.box.encrypt(secret))  # a random nonce, then the ciphertext and its tag

    def open(self, sealed: bytes) -> bytes:
        try:
            return self.box.decrypt(sealed)
        except CryptoError:
            raise KeyEncryptionError(
                f"{SETTING}: {self.path} does not open the keys stored in the database; "
                "every node needs the key that sealed them"
            ) from None
