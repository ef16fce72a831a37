"""The helper process (app/votes/helper_process.py): requests on stdin, answers on stdout, in order.

Each request is a 4-byte big-endian length and a msgpack array:
- `["verify", [[public_key, message, signature], ...]]`, answered with one byte per signature,
  1 if it verifies;
- `["sign", seed, [payload, ...]]`, answered with the 64-byte signatures, concatenated, made with
  the Ed25519 key of that 32-byte seed (the service's receipt key: this process is the
  service's own child, and keeps nothing on disk);
- `["fdatasync", path]`, answered with 4 bytes: 0 once the file's data is on disk (or the file
  is gone), else the errno of the failure.
Each answer is a 4-byte length and those bytes. It imports nothing of the web stack, so it starts
in a few tens of milliseconds.
"""

from __future__ import annotations

import errno
import os
import sys
from typing import BinaryIO

import msgspec
from nacl.bindings import crypto_sign, crypto_sign_seed_keypair

from app.core.protocol import SIGNATURE_BYTES, signature_verifies

_decode = msgspec.msgpack.decode


def answer(request: list, secret_keys: dict[bytes, bytes]) -> bytes:
    if request[0] == "verify":
        return bytes(signature_verifies(*item) for item in request[1])
    if request[0] == "sign":
        seed, payloads = request[1], request[2]
        if seed not in secret_keys:
            secret_keys[seed] = crypto_sign_seed_keypair(seed)[1]
        secret_key = secret_keys[seed]
        return b"".join(crypto_sign(payload, secret_key)[:SIGNATURE_BYTES] for payload in payloads)
    if request[0] == "fdatasync":
        return fdatasync(request[1]).to_bytes(4, "big")
    raise ValueError(f"unknown request {request[0]!r}")


def fdatasync(path: str) -> int:
    """0 once the file's data is on disk, or if there is no such file; else the errno."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return 0
    except OSError as error:
        return error.errno or errno.EIO
    try:
        os.fdatasync(fd)
    except OSError as error:
        return error.errno or errno.EIO  # a code that fits the answer (unsigned)
    finally:
        os.close(fd)
    return 0


def serve(requests: BinaryIO, answers: BinaryIO) -> None:
    secret_keys: dict[bytes, bytes] = {}
    while header := requests.read(4):
        result = answer(_decode(requests.read(int.from_bytes(header, "big"))), secret_keys)
        answers.write(len(result).to_bytes(4, "big") + result)
        answers.flush()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
