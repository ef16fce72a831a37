"""C2SP tlog-checkpoint: the note text that names a tree (origin, size, root)."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from app.ballot_log.merkle import HASH_BYTES
from app.ballot_log.note import NoteError, Verifier, open_note

_SIZE = re.compile(r"0|[1-9][0-9]{0,19}")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "" or not lines[0] or any(not line for line in lines[:-1]):
            raise NoteError("the checkpoint is not origin, size and root on their own lines")
        if not _SIZE.fullmatch(lines[1]):
            raise NoteError("the checkpoint's size is not a decimal number")
        try:
            root = base64.b64decode(lines[2], validate=True)
        except binascii.Error:
            root = b""
        if len(root) != HASH_BYTES:
            raise NoteError("the checkpoint's root is not a base64 SHA-256 hash")
        return cls(lines[0], int(lines[1]), root)


def open_checkpoint(note: bytes, verifiers: list[Verifier], origin: str | None = None) -> Checkpoint:
    """The checkpoint of a signed note, verified; NoteError when it is not the expected log's."""
    checkpoint = Checkpoint.parse(open_note(note, verifiers))
    if origin is not None and checkpoint.origin != origin:
        raise NoteError(f"the checkpoint is for {checkpoint.origin!r}, not {origin!r}")
    return checkpoint
