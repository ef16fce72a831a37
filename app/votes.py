"""Accepting votes: each is verified, counted exactly once, and answered only after the commit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select

from app import problems
from app.commits import KEY_REUSED, Accepted, GroupCommitter
from app.db import Database
from app.keys import KeyRing
from app.polls import CachedPoll, PollCache
from app.protocol import Ballot, Vote
from app.schema import votes

MAX_CLOCK_AHEAD_MS = 5 * 60 * 1000  # devices' clocks drift; beyond this a vote is suspect

__all__ = ["Accepted", "VoteService"]


@dataclass(slots=True)
class _Flight:
    request_hash: bytes
    outcome: asyncio.Future[Accepted]


def _as_replay(outcome: asyncio.Future[Accepted]) -> asyncio.Future[Accepted]:
    """What a request joining another's attempt gets: the same receipt, as a replay (200)."""
    replay: asyncio.Future[Accepted] = asyncio.get_running_loop().create_future()

    def settle(done: asyncio.Future[Accepted]) -> None:
        if replay.done():
            return
        if done.cancelled():
            replay.cancel()
        elif (error := done.exception()) is not None:
            replay.set_exception(error)
        else:
            replay.set_result(Accepted(receipt=done.result().receipt, created=False))

    outcome.add_done_callback(settle)
    return replay


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class VoteService:
    def __init__(
        self,
        db: Database,
        keys: KeyRing,
        clock: Callable[[], int] = now_ms,
        *,
        committer: GroupCommitter | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.polls = PollCache(db)
        self.committer = committer or GroupCommitter(db, keys, clock)
        self._in_flight: dict[str, _Flight] = {}

    @property
    def on_accepted(self) -> list[Callable[[str, str], None]]:
        """Called with (poll_id, option_id) after each new vote is committed; must not block."""
        return self.committer.on_accepted

    @property
    def keys(self) -> KeyRing:
        return self.committer.keys

    async def submit(self, vote: Vote) -> Accepted:
        """Identical concurrent requests share one attempt; a different body under a busy key is refused."""
        # Shielded: a client that hangs up must not cancel a commit others wait on.
        return await asyncio.shield(self.start(vote))

    def start(self, vote: Vote) -> asyncio.Future[Accepted]:
        """Starts accepting a vote; the future resolves with its answer or its problem.

        For callers that wait on many votes at once (the batch endpoint): no task per vote.
        """
        ballot = Ballot.of(vote)
        key = vote.idempotency_key
        flight = self._in_flight.get(key)
        if flight is not None:
            if flight.request_hash != ballot.request_hash:
                refused: asyncio.Future[Accepted] = asyncio.get_running_loop().create_future()
                refused.set_exception(problems.RequestInFlight(headers={"Retry-After": "1"}))
                return refused
            return _as_replay(flight.outcome)
        poll = self.polls.cached(vote.poll_id)
        outcome: asyncio.Future[Accepted]
        if poll is not None and self._problem(ballot, poll) is None:
            # The hot path: a vote for a warm poll that passes its checks goes straight to the
            # group commit, with no task of its own.
            outcome = self.committer.enqueue(ballot)
        else:
            outcome = asyncio.ensure_future(self._accept(ballot))
        self._in_flight[key] = _Flight(ballot.request_hash, outcome)
        outcome.add_done_callback(lambda _: self._in_flight.pop(key, None))
        return outcome

    def in_flight(self, idempotency_key: str) -> bool:
        return idempotency_key in self._in_flight

    async def close(self) -> None:
        await self.committer.close()

    async def _accept(self, ballot: Ballot) -> Accepted:
        vote = ballot.vote
        problem = self._problem(ballot, await self.polls.get(vote.poll_id))
        if problem is not None:
            # A retry of a vote accepted earlier gets its receipt whatever changed since (the poll
            # may have closed while the first response was lost).
            replay = await self._replay(vote.idempotency_key, ballot.request_hash)
            if replay is not None:
                return replay
            raise problem
        return await self.committer.commit(ballot)

    def _problem(self, ballot: Ballot, poll: CachedPoll | None) -> problems.Problem | None:
        """What is wrong with the vote for its poll, if anything. The signature is checked with
        its batch, at commit (app/crypto_helper.py)."""
        vote = ballot.vote
        if poll is None:
            return problems.PollNotFound(f"There is no poll {vote.poll_id!r}.")
        if vote.option_id not in poll.option_ids:
            return problems.UnknownOption(f"Poll {vote.poll_id!r} has no option {vote.option_id!r}.")
        now = self.clock()
        if vote.created_at > now + MAX_CLOCK_AHEAD_MS:
            return problems.ClockInFuture("created_at is more than 5 minutes ahead of the service's clock.")
        closes_at = poll.poll.closes_at
        if closes_at is not None and (
            vote.created_at > closes_at or now > closes_at + poll.poll.late_grace_seconds * 1000
        ):
            return problems.PollClosed(f"Poll {vote.poll_id!r} closed at {closes_at} ms.")
        return None

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
            raise problems.IdempotencyKeyReused(KEY_REUSED)
        # Another worker's commit is visible before its WAL fsync is done: wait for one.
        await self.db.durable()
        return Accepted(receipt=row.receipt, created=False)
