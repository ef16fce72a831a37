"""C2SP signed-note with Ed25519: signing, verifying, and verifier keys (`vkey`s)."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from nacl.signing import SigningKey

from app.core.protocol import signature_verifies

ED25519 = 0x01
SIGNATURE_PREFIX = "\u2014 "  # em dash, space
MAX_NOTE_BYTES = 16 * 1024  # a checkpoint is ~200 bytes; 16 signatures of any kind fit
MAX_SIGNATURES = 100


class NoteError(ValueError):
    """A note that is malformed, or not signed by a trusted key."""


def key_id(name: str, public_key: bytes) -> int:
    return int.from_bytes(hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + public_key).digest()[:4], "big")


@dataclass(frozen=True, slots=True)
class Verifier:
    name: str
    key_id: int
    public_key: bytes

    @property
    def vkey(self) -> str:
        encoded = base64.b64encode(bytes([ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.key_id:08x}+{encoded}"

    @classmethod
    def of(cls, name: str, public_key: bytes) -> Verifier:
        return cls(name, key_id(name, public_key), public_key)

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        parts = vkey.split("+", 2)  # the base64 part may hold + itself
        if len(parts) != 3 or not _valid_name(parts[0]) or len(parts[1]) != 8:
            raise NoteError(f"not an Ed25519 verifier key: {vkey!r}")
        try:
            material = base64.b64decode(parts[2], validate=True)
            wanted_id = int(parts[1], 16)
        except (binascii.Error, ValueError):
            raise NoteError(f"not an Ed25519 verifier key: {vkey!r}") from None
        if len(material) != 33 or material[0] != ED25519:
            raise NoteError(f"not an Ed25519 verifier key: {vkey!r}")
        verifier = cls.of(parts[0], material[1:])
        if verifier.key_id != wanted_id:
            raise NoteError(f"the verifier key's id does not match its key: {vkey!r}")
        return verifier


def _valid_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def sign(text: str, name: str, key: SigningKey) -> str:
    """The signed note: the text (ending in a newline), a blank line, one signature line."""
    if not text.endswith("\n") or not _valid_name(name):
        raise ValueError("a note's text ends in a newline, and its key name has no spaces or +")
    public_key = bytes(key.verify_key)
    signature = key_id(name, public_key).to_bytes(4, "big") + key.sign(text.encode()).signature
    return f"{text}\n{SIGNATURE_PREFIX}{name} {base64.b64encode(signature).decode()}\n"


def open_note(note: bytes, verifiers: list[Verifier]) -> str:
    """The note's text, once a signature by one of the verifiers checks; NoteError otherwise.

    As signed-note says: signatures by unknown keys are ignored, a known key's bad signature
    rejects the whole note, and a note with no good known signature is rejected."""
    if len(note) > MAX_NOTE_BYTES:
        raise NoteError("the note is too large")
    try:
        decoded = note.decode("utf-8")
    except UnicodeDecodeError:
        raise NoteError("the note is not UTF-8") from None
    if any(c < " " and c != "\n" for c in decoded):
        raise NoteError("the note holds control characters")
    split = decoded.rfind("\n\n")
    if split < 0 or not decoded.endswith("\n"):
        raise NoteError("the note has no signatures")
    text, lines = decoded[: split + 1], decoded[split + 2 : -1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError("the note has too many signatures")
    known = {(v.name, v.key_id): v for v in verifiers}
    verified = False
    for line in lines:
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError("the note has a malformed signature line")
        name, _, encoded = line[len(SIGNATURE_PREFIX) :].rpartition(" ")
        try:
            signature = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise NoteError("the note has a malformed signature") from None
        if not _valid_name(name) or len(signature) < 5:
            raise NoteError("the note has a malformed signature line")
        verifier = known.get((name, int.from_bytes(signature[:4], "big")))
        if verifier is None:
            continue
        if not signature_verifies(verifier.public_key, text.encode(), signature[4:]):
            raise NoteError(f"the signature by {name} does not verify")
        verified = True
    if not verified:
        raise NoteError("the note is not signed by a known log key")
    return text
