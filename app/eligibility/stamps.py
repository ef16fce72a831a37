"""The proof-of-work stamp (docs/protocol.md, Eligibility; docs/abuse.md measures its cost).

A stamp is a nonce: decimal digits such that SHA-256 of

    "vote-stamp/v1\n" poll_id "\n" public_key "\n" nonce

(UTF-8, public_key as the vote carries it) starts with `difficulty` zero bits. Its input names the
poll and the device's key, so a stamp serves one device in one poll only, and needs nothing from
the service: a device computes it offline. One SHA-256 checks it, which is why the acceptance path
checks it before the signature.
"""

from __future__ import annotations

import hashlib
from itertools import count

STAMP_CONTEXT = "vote-stamp/v1"


def stamp_input(poll_id: str, public_key: str, nonce: str) -> bytes:
    return f"{STAMP_CONTEXT}\n{poll_id}\n{public_key}\n{nonce}".encode()


def leading_zero_bits(digest: bytes) -> int:
    value = int.from_bytes(digest, "big")
    return len(digest) * 8 - value.bit_length()


def stamp_valid(poll_id: str, public_key: str, nonce: str | None, difficulty: int) -> bool:
    if nonce is None:
        return False
    return leading_zero_bits(hashlib.sha256(stamp_input(poll_id, public_key, nonce)).digest()) >= difficulty


def solve(poll_id: str, public_key: str, difficulty: int) -> str:
    """The first nonce that meets `difficulty`, counting from 0: what a device does (tests, bench)."""
    prefix = hashlib.sha256(stamp_input(poll_id, public_key, ""))
    for n in count():
        attempt = prefix.copy()
        attempt.update(str(n).encode())
        if leading_zero_bits(attempt.digest()) >= difficulty:
            return str(n)
    raise AssertionError("unreachable")
