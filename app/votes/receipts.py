"""Receipts: the service's signed statement that a vote is committed."""

from __future__ import annotations

import msgspec

from app.core.protocol import Receipt, ReceiptPayload, Vote, b64encode


def receipt_payload(kid: str, vote: Vote, seq: int, accepted_at: int, ballot_hash: str) -> bytes:
    """The bytes the service signs (group commits sign them in batches, app/votes/crypto.py)."""
    return msgspec.json.encode(
        ReceiptPayload(
            kid=kid,
            poll_id=vote.poll_id,
            vote_id=vote.vote_id,
            idempotency_key=vote.idempotency_key,
            ballot_hash=ballot_hash,
            seq=seq,
            accepted_at=accepted_at,
        )
    )


def signed_receipt(kid: str, payload: bytes, signature: bytes) -> bytes:
    return msgspec.json.encode(Receipt(kid=kid, payload=b64encode(payload), signature=b64encode(signature)))
