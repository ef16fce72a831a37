"""Writes vote-v1.json: fixed keys, one vote, its signed bytes, signature, ballot hash and receipt.

Ed25519 is deterministic, so the file is the same on every run. Regenerate only when the protocol
gains a field: `python tests/vectors/generate.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

from nacl.signing import SigningKey

from app.core.keys import ReceiptKey, kid_for
from app.core.protocol import Ballot, Vote, b64encode
from tests.helpers import b64decode, issue_receipt

VOTER_SEED = bytes(range(32))
SERVER_SEED = bytes(range(32, 64))
OUT = Path(__file__).with_name("vote-v1.json")


def build() -> dict[str, object]:
    voter = SigningKey(VOTER_SEED)
    server = SigningKey(SERVER_SEED)
    fields = {
        "vote_id": "7d1b4c1e-2f0a-4b55-9a6e-0f8f8c1a2b3c",
        "idempotency_key": "0b6f2b8e-9d43-4e39-8f2a-3c4d5e6f7a8b",
        "poll_id": "demo-poll_1",
        "option_id": "a-park",
        "created_at": 1764000000123,
    }
    unsigned = Vote(**fields, public_key=b64encode(bytes(voter.verify_key)), signature="A" * 86)
    signed_bytes = unsigned.signing_bytes()
    signature = voter.sign(signed_bytes).signature
    vote = Vote(**fields, public_key=unsigned.public_key, signature=b64encode(signature))
    key = ReceiptKey(kid=kid_for(bytes(server.verify_key)), signing_key=server)
    receipt = issue_receipt(key, vote, seq=42, accepted_at=1764000000456)
    return {
        "voter": {"seed": b64encode(VOTER_SEED), "public_key": vote.public_key},
        "server": {
            "seed": b64encode(SERVER_SEED),
            "public_key": b64encode(bytes(server.verify_key)),
            "kid": key.kid,
        },
        "vote": {**fields, "public_key": vote.public_key, "signature": vote.signature},
        "signing_bytes": signed_bytes.decode(),
        "ballot_hash": Ballot.of(vote).ballot_hash,
        "receipt": json.loads(receipt),
        "receipt_payload": json.loads(b64decode(json.loads(receipt)["payload"])),
    }


if __name__ == "__main__":
    OUT.write_text(json.dumps(build(), indent=2) + "\n")
    print(f"wrote {OUT}")
