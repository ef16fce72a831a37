"""The signature helper process: verifies batches of Ed25519 signatures sent on stdin.

Each request is a 4-byte big-endian length and a msgpack list of [public_key, message,
signature]; each answer is a 4-byte length and one byte per signature, 1 if it verifies.
It imports nothing of the web stack, so it starts in a few tens of milliseconds.
"""

from __future__ import annotations

import sys
from typing import BinaryIO

import msgspec

from app.protocol import signature_verifies

_decode = msgspec.msgpack.Decoder(list[tuple[bytes, bytes, bytes]]).decode


def serve(requests: BinaryIO, answers: BinaryIO) -> None:
    while header := requests.read(4):
        batch = _decode(requests.read(int.from_bytes(header, "big")))
        result = bytes(signature_verifies(*item) for item in batch)
        answers.write(len(result).to_bytes(4, "big") + result)
        answers.flush()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
