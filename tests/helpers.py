"""Test helpers: a device that signs votes, the HTTP calls it makes, and the receipt check
a client must pass before it calls a vote confirmed (docs/protocol.md)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from nacl.signing import SigningKey, VerifyKey
from sqlalchemy import event, update

from app.core.keys import ReceiptKey
from app.core.protocol import Vote, b64encode, signing_bytes
from app.storage.db import Database
from app.storage.schema import polls
from app.votes.receipts import receipt_payload, signed_receipt

ADMIN_TOKEN = "test-admin-token-0123456789"
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def b64decode(text: str) -> bytes:
    """Strict unpadded base64url, as docs/protocol.md has it: raises ValueError on anything else."""
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("expected unpadded base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as error:
        raise ValueError(str(error)) from None


def issue_receipt(key: ReceiptKey, vote: Vote, seq: int, accepted_at: int) -> bytes:
    """A receipt as the service signs it, for a vote it never saw (test vectors, client checks)."""
    signed = vote.signing_bytes()
    hash_ = b64encode(hashlib.sha256(signed + b64decode(vote.signature)).digest())
    payload = receipt_payload(key.kid, vote, seq, accepted_at, hash_)
    return signed_receipt(key.kid, payload, key.sign(payload))


async def create_poll(client: httpx.AsyncClient, **spec: Any) -> dict[str, Any]:
    """A poll that takes every vote unless `eligibility` says otherwise: most tests are about votes,
    not who may cast them (tests/test_eligibility*.py are)."""
    spec.setdefault("eligibility", "anyone")
    response = await client.post("/api/v1/polls", json=spec, headers=admin_headers())
    assert response.status_code == 201, response.text
    return response.json()


def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Voter:
    """A device: one Ed25519 key, signing votes exactly as docs/protocol.md says."""

    key: SigningKey = field(default_factory=SigningKey.generate)

    @property
    def public_key(self) -> str:
        return b64encode(bytes(self.key.verify_key))

    def vote(self, poll_id: str, option_id: str, **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "vote_id": str(uuid.uuid4()),
            "idempotency_key": str(uuid.uuid4()),
            "poll_id": poll_id,
            "option_id": option_id,
            "created_at": now_ms(),
        }
        body.update({k: v for k, v in overrides.items() if k not in ("public_key", "signature")})
        signed = signing_bytes(
            body["poll_id"], body["option_id"], body["vote_id"], body["idempotency_key"], body["created_at"]
        )
        body["public_key"] = overrides.get("public_key", self.public_key)
        body["signature"] = overrides.get("signature", b64encode(self.key.sign(signed).signature))
        return body


async def register_device(client: httpx.AsyncClient, poll_id: str, voter: Voter) -> httpx.Response:
    """What the page does on load while the poll is open (docs/protocol.md, Late delivery)."""
    return await client.post(f"/api/v1/polls/{poll_id}/devices", json={"public_key": voter.public_key})


async def close_poll(client: httpx.AsyncClient, poll_id: str) -> int:
    """Closes an open poll now, as time passing would; returns its new closes_at."""
    closes_at = now_ms() - 1
    async with client.app.state.db.write() as conn:  # type: ignore[attr-defined]
        await conn.execute(update(polls).where(polls.c.id == poll_id).values(closes_at=closes_at))
    client.app.state.votes.polls._entries.clear()  # type: ignore[attr-defined]  # as after the cache's time-to-live
    return closes_at


@contextmanager
def database_reads(db: Database, containing: str = "") -> Iterator[list[str]]:
    """Records every SELECT the database handle runs (those containing `containing`)."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if containing in statement and statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)


async def send_vote(
    client: httpx.AsyncClient, vote: dict[str, Any], *, poll_id: str | None = None, key: str | None = None
) -> httpx.Response:
    """POSTs a vote the way the service worker does: quoted Structured Field key header."""
    return await client.post(
        f"/api/v1/polls/{poll_id or vote['poll_id']}/votes",
        json=vote,
        headers={"Idempotency-Key": f'"{key or vote["idempotency_key"]}"'},
    )


def verify_receipt(receipt: dict[str, Any], keys: list[dict[str, Any]], vote: dict[str, Any]) -> dict[str, Any]:
    """Returns the payload; raises if the signature, the ids or the ballot hash do not match."""
    key = next(k for k in keys if k["kid"] == receipt["kid"])
    payload_bytes = b64decode(receipt["payload"])
    VerifyKey(b64decode(key["public_key"])).verify(payload_bytes, b64decode(receipt["signature"]))
    payload = json.loads(payload_bytes)
    for name in ("poll_id", "vote_id", "idempotency_key"):
        assert payload[name] == vote[name], name
    signed = signing_bytes(
        vote["poll_id"], vote["option_id"], vote["vote_id"], vote["idempotency_key"], vote["created_at"]
    )
    expected_hash = b64encode(hashlib.sha256(signed + b64decode(vote["signature"])).digest())
    assert payload["ballot_hash"] == expected_hash
    return payload
