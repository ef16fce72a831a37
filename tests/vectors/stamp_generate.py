"""Writes stamp-v1.json: proof-of-work stamps for the key of vote-v1.json, for a few polls and difficulties.

Each entry is the first nonce, counting from 0, whose hash meets the difficulty: what the page's
worker (frontend/pow-worker.js) and app/eligibility/stamps.py both find. The same on every run.
Regenerate only if the stamp's input changes: `python tests/vectors/stamp_generate.py`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from app.eligibility.stamps import solve, stamp_input

VOTE_VECTOR = Path(__file__).with_name("vote-v1.json")
OUT = Path(__file__).with_name("stamp-v1.json")
LONGEST_POLL_ID = "p" * 64  # the input's tail then spans two SHA-256 blocks
CASES = (("vote", 8), ("vote", 12), ("vote", 16), (LONGEST_POLL_ID, 12))


def build() -> dict[str, object]:
    vote = json.loads(VOTE_VECTOR.read_text())["vote"]
    public_key = vote["public_key"]
    stamps = []
    for poll, difficulty in CASES:
        poll_id = vote["poll_id"] if poll == "vote" else poll
        nonce = solve(poll_id, public_key, difficulty)
        hashed = stamp_input(poll_id, public_key, nonce)
        stamps.append(
            {
                "poll_id": poll_id,
                "difficulty": difficulty,
                "stamp": nonce,
                "hash_input": hashed.decode(),
                "sha256_hex": hashlib.sha256(hashed).hexdigest(),
            }
        )
    return {"public_key": public_key, "stamps": stamps}


if __name__ == "__main__":
    OUT.write_text(json.dumps(build(), indent=2) + "\n")
