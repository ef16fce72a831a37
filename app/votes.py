"""Accepting votes: each is verified, counted exactly once, and answered only after the commit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from app import problems
from app.db import Database
from app.keys import KeyRing
from app.polls import Poll, load_poll
from app.protocol import Vote
from app.receipts import issue_receipt
from app.schema import options, polls, votes

MAX_CLOCK_AHEAD_MS = 5 * 60 * 1000  # devices' clocks drift; beyond this a vote is suspect


@dataclass(frozen=True, slots=True)
class Accepted:
    receipt: bytes
    created: bool
    """True only for the request that caused the commit (201); every replay gets False (200)."""


@dataclass(slots=True)
class _Flight:
    request_hash: bytes
    task: asyncio.Task[Accepted]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class VoteService:
    def __init__(self, db: Database, keys: KeyRing, clock: Callable[[], int] = now_ms) -> None:
        self.db = db
        self.keys = keys
        self.clock = clock
        self._in_flight: dict[str, _Flight] = {}
        self.on_accepted: list[Callable[[str, str], None]] = []
        """Called with (poll_id, option_id) after each new vote is committed; must not block."""

    async def submit(self, vote: Vote) -> Accepted:
        """Identical concurrent requests share one attempt; a different body under a busy key is refused."""
        request_hash = vote.request_hash()
        flight = self._in_flight.get(vote.idempotency_key)
        if flight is not None:
            if flight.request_hash != request_hash:
                raise problems.RequestInFlight(headers={"Retry-After": "1"})
            accepted = await asyncio.shield(flight.task)
            return Accepted(receipt=accepted.receipt, created=False)
        # A task of its own: a client that hangs up must not cancel a commit others wait on.
        task = asyncio.create_task(self._accept(vote, request_hash))
        self._in_flight[vote.idempotency_key] = _Flight(request_hash, task)
        task.add_done_callback(lambda _: self._in_flight.pop(vote.idempotency_key, None))
        return await asyncio.shield(task)

    def in_flight(self, idempotency_key: str) -> bool:
        return idempotency_key in self._in_flight

    async def _accept(self, vote: Vote, request_hash: bytes) -> Accepted:
        # A retry is answered from the stored receipt before anything else, so that a vote accepted
        # just before the poll closed still gets its receipt afterwards.
        replay = await self._replay(vote.idempotency_key, request_hash)
        if replay is not None:
            return replay
        poll = await load_poll(self.db, vote.poll_id)
        if poll is None:
            raise problems.PollNotFound(f"There is no poll {vote.poll_id!r}.")
        self._check(vote, poll)
        try:
            return await self._commit(vote, request_hash)
        except IntegrityError as error:
            # Another worker or node committed this key or this device's vote first.
            return await self._resolve_conflict(vote, request_hash, error)

    def _check(self, vote: Vote, poll: Poll) -> None:
        try:
            VerifyKey(vote.public_key_bytes()).verify(vote.signing_bytes(), vote.signature_bytes())
        except (BadSignatureError, ValueError):
            raise problems.InvalidSignature("The signature does not verify against public_key.") from None
        if vote.option_id not in poll.option_ids():
            raise problems.UnknownOption(f"Poll {poll.id!r} has no option {vote.option_id!r}.")
        now = self.clock()
        if vote.created_at > now + MAX_CLOCK_AHEAD_MS:
            raise problems.ClockInFuture("created_at is more than 5 minutes ahead of the service's clock.")
        if poll.closes_at is not None and (
            vote.created_at > poll.closes_at or now > poll.closes_at + poll.late_grace_seconds * 1000
        ):
            raise problems.PollClosed(f"Poll {poll.id!r} closed at {poll.closes_at} ms.")

    async def _commit(self, vote: Vote, request_hash: bytes) -> Accepted:
        async with self.db.write() as conn:
            seq = await _next_seq(conn, vote.poll_id)
            accepted_at = self.clock()
            receipt = issue_receipt(self.keys.active, vote, seq, accepted_at)
            await conn.execute(
                insert(votes).values(
                    idempotency_key=vote.idempotency_key,
                    poll_id=vote.poll_id,
                    seq=seq,
                    vote_id=vote.vote_id,
                    option_id=vote.option_id,
                    public_key=vote.public_key_bytes(),
                    signature=vote.signature_bytes(),
                    created_at=vote.created_at,
                    accepted_at=accepted_at,
                    request_hash=request_hash,
                    receipt=receipt,
                )
            )
            await conn.execute(
                update(options)
                .where(options.c.poll_id == vote.poll_id, options.c.id == vote.option_id)
                .values(votes=options.c.votes + 1)
            )
        # Leaving the block committed the transaction (fsynced): only now may the receipt go out.
        for listener in self.on_accepted:
            listener(vote.poll_id, vote.option_id)
        return Accepted(receipt=receipt, created=True)

    async def _replay(self, idempotency_key: str, request_hash: bytes) -> Accepted | None:
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(votes.c.request_hash, votes.c.receipt).where(votes.c.idempotency_key == idempotency_key)
                )
            ).first()
        if row is None:
            return None
        if row.request_hash != request_hash:
            raise problems.IdempotencyKeyReused("This idempotency key was already used for a different vote.")
        return Accepted(receipt=row.receipt, created=False)

    async def _resolve_conflict(self, vote: Vote, request_hash: bytes, error: IntegrityError) -> Accepted:
        replay = await self._replay(vote.idempotency_key, request_hash)
        if replay is not None:
            return replay
        async with self.db.read() as conn:
            voted = (
                await conn.execute(
                    select(votes.c.seq).where(
                        votes.c.poll_id == vote.poll_id, votes.c.public_key == vote.public_key_bytes()
                    )
                )
            ).first()
        if voted is None:
            raise error
        raise problems.AlreadyVoted("This device's key has already cast a vote in this poll.")


async def _next_seq(conn: AsyncConnection, poll_id: str) -> int:
    result = await conn.execute(
        update(polls)
        .where(polls.c.id == poll_id)
        .values(vote_count=polls.c.vote_count + 1)
        .returning(polls.c.vote_count)
    )
    return result.scalar_one()
