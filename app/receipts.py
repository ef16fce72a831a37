"""Receipts: the service's signed statement that a vote is committed."""

from __future__ import annotations

import msgspec

from app.keys import ReceiptKey
from app.protocol import Receipt, ReceiptPayload, Vote, b64encode


def issue_receipt(key: ReceiptKey, vote: Vote, seq: int, accepted_at: int, ballot_hash: str | None = None) -> bytes:
    """The exact response body: stored with the vote so every retry gets the same bytes."""
    payload = msgspec.json.encode(
        ReceiptPayload(
            kid=key.kid,
            poll_id=vote.poll_id,
            vote_id=vote.vote_id,
            idempotency_key=vote.idempotency_key,
            ballot_hash=ballot_hash or vote.ballot_hash(),
            seq=seq,
            accepted_at=accepted_at,
        )
    )
    receipt = Receipt(kid=key.kid, payload=b64encode(payload), signature=b64encode(key.sign(payload)))
    return msgspec.json.encode(receipt)
