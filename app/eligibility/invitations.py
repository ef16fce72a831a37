"""Invitations: the voter roll of an `invite` poll.

A code is 128 random bits, shown once to the organiser and stored only as a keyed hash
(HMAC-SHA256 under the eligibility key, app/eligibility/secret.py): a copy of the database gives
no usable code. The first device key that votes with a code is bound to it, forever: later votes
from that key need no code, and the code admits no other key. The binding is one conditional
UPDATE, so that of many first uses at once exactly one wins, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import insert, select, update

from app.core import problems
from app.storage.db import Database
from app.storage.schema import invitations

CODE_BYTES = 16  # 22 base64url characters
MAX_PER_REQUEST = 10_000  # one CLI or API call; an organiser asks again for more
NOT_ELIGIBLE = "This poll takes votes by invitation only: open your invitation link on this device."
INVITATION_USED = "This invitation was already used on another device; each admits one device only."
INVITATION_UNKNOWN = "This invitation is not one of this poll's: check the link you were sent."


def code_hash(key: bytes, poll_id: str, code: str) -> bytes:
    return hmac.new(key, f"invitation\n{poll_id}\n{code}".encode(), hashlib.sha256).digest()


async def issue(db: Database, key: bytes, poll_id: str, count: int) -> list[str]:
    """`count` new codes for the poll; only their hashes are kept."""
    codes = [secrets.token_urlsafe(CODE_BYTES) for _ in range(count)]
    async with db.write() as conn:
        await conn.execute(
            insert(invitations), [{"poll_id": poll_id, "code_hash": code_hash(key, poll_id, c)} for c in codes]
        )
    return codes


async def admit(
    db: Database, key: bytes, poll_id: str, public_key: bytes, code: str | None, now_ms: int
) -> problems.Problem | None:
    """None when the key is on the roll (admitted earlier, or by `code` now); else why not."""
    async with db.read() as conn:
        admitted = (
            await conn.execute(
                select(invitations.c.code_hash)
                .where(invitations.c.poll_id == poll_id, invitations.c.public_key == public_key)
                .limit(1)
            )
        ).first()
    if admitted is not None:
        return None
    if code is None:
        return problems.NotEligible(NOT_ELIGIBLE)
    hashed = code_hash(key, poll_id, code)
    async with db.write() as conn:
        bound = await conn.execute(
            update(invitations)
            .where(
                invitations.c.poll_id == poll_id,
                invitations.c.code_hash == hashed,
                invitations.c.public_key.is_(None),
            )
            .values(public_key=public_key, admitted_at=now_ms)
        )
        if bound.rowcount == 1:
            return None
        holder = (
            await conn.execute(
                select(invitations.c.public_key).where(
                    invitations.c.poll_id == poll_id, invitations.c.code_hash == hashed
                )
            )
        ).first()
    if holder is None:
        return problems.InvitationUnknown(INVITATION_UNKNOWN)
    return None if holder.public_key == public_key else problems.InvitationUsed(INVITATION_USED)
