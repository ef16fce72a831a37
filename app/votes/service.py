"""Accepting votes: each is checked (app/votes/acceptance.py), counted exactly once, and answered
only after its commit is on disk."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from sqlalchemy import select

from app.core import problems
from app.core.keys import KeyRing
from app.core.protocol import Ballot, Vote, b64url_checked
from app.eligibility import invitations
from app.polls.cache import PollCache
from app.storage.db import Database
from app.storage.schema import votes
from app.votes import devices
from app.votes.acceptance import (
    INVALID_SIGNATURE,
    Accepted,
    arrives_late,
    in_flight_problem,
    late_problem,
    needs_admission,
    poll_problem,
    stored_answer,
)
from app.votes.commit_engine import CommitEngine
from app.votes.group_commit import GroupCommitter

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


def _refused(problem: problems.Problem) -> asyncio.Future[Accepted]:
    refused: asyncio.Future[Accepted] = asyncio.get_running_loop().create_future()
    refused.set_exception(problem)
    return refused


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class VoteService:
    """Built with the app (it does no I/O until `open`), so that the routes get it when they are made."""

    def __init__(
        self, db: Database, clock: Callable[[], int] = now_ms, *, committer: GroupCommitter | None = None
    ) -> None:
        self.db = db
        self.clock = clock
        self.polls = PollCache(db)
        self.committer = committer or GroupCommitter(CommitEngine(db), clock)
        self._in_flight: dict[str, _Flight] = {}
        self.eligibility_key: bytes | None = None
        """Hashes invitation codes (app/eligibility/secret.py); set by `open`."""

    def open(self, keys: KeyRing, eligibility_key: bytes | None = None) -> None:
        """Called at startup, once the keys are loaded: until then no vote is accepted (nor, without
        an eligibility key, any vote in an `invite` poll)."""
        self.committer.keys = keys
        self.eligibility_key = eligibility_key

    @property
    def on_accepted(self) -> list[Callable[[str, str], None]]:
        """Called with (poll_id, option_id) after each new vote is committed; must not block."""
        return self.committer.on_accepted

    @property
    def durability_failure(self) -> BaseException | None:
        """Why receipts can no longer be issued by this worker, if they cannot: a failed fsync, or
        the database or its WAL deleted or replaced under it."""
        return self.committer.engine.durability_failure

    def check_durability(self) -> BaseException | None:
        """`durability_failure`, after checking now that the database files are still the ones
        opened (for /readyz: without votes, no fsync would have noticed)."""
        return self.committer.engine.check_files()

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
            problem = in_flight_problem(flight.request_hash, ballot.request_hash)
            return _as_replay(flight.outcome) if problem is None else _refused(problem)
        poll = self.polls.cached(vote.poll_id)
        now = self.clock()
        outcome: asyncio.Future[Accepted]
        if (
            poll is not None
            and poll_problem(vote, poll, now) is None
            and not arrives_late(poll, now)
            and not needs_admission(poll)
        ):
            # The hot path: a vote for a warm poll that passes its checks goes straight to the
            # group commit, with no task of its own.
            outcome = self.committer.enqueue(ballot)
        else:
            outcome = asyncio.ensure_future(self._accept(ballot))
        self._in_flight[key] = _Flight(ballot.request_hash, outcome)
        outcome.add_done_callback(lambda _: self._in_flight.pop(key, None))
        return outcome

    async def register_device(self, poll_id: str, public_key: str) -> int:
        """Notes a device's key while its poll is open; returns when the service first saw it."""
        poll = await self.polls.get(poll_id)
        if poll is None:
            raise problems.PollNotFound.named(poll_id)
        now = self.clock()
        if arrives_late(poll, now):
            raise problems.PollClosed(f"Poll {poll_id!r} closed at {poll.poll.closes_at} ms.")
        return await devices.register(self.db, poll_id, b64url_checked(public_key), now)

    async def prefetch_polls(self, poll_ids: Collection[str]) -> None:
        """Reads the named polls not in memory in one go: a backlog of votes often names many."""
        await self.polls.prefetch(poll_ids)

    async def counted_vote(self, poll_id: str, public_key: bytes) -> tuple[str, bytes] | None:
        """The option and receipt of the vote this device key has counted in the poll, if any
        (for a page that tells a voter what was counted)."""
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(votes.c.option_id, votes.c.receipt).where(
                        votes.c.poll_id == poll_id, votes.c.public_key == public_key
                    )
                )
            ).first()
        if row is None:
            return None
        await self.committer.engine.durable()  # no receipt is shown before its commit is on disk
        return row.option_id, row.receipt

    def in_flight(self, idempotency_key: str) -> bool:
        return idempotency_key in self._in_flight

    async def close(self) -> None:
        await self.committer.close()

    async def _accept(self, ballot: Ballot) -> Accepted:
        vote = ballot.vote
        poll = await self.polls.get(vote.poll_id)
        now = self.clock()
        problem = poll_problem(vote, poll, now)
        if problem is None and poll is not None and arrives_late(poll, now):
            closes_at = poll.poll.closes_at
            assert closes_at is not None
            problem = late_problem(await devices.registered_by(self.db, vote.poll_id, ballot.public_key, closes_at))
        if problem is None and poll is not None and needs_admission(poll):
            problem = await self._admission_problem(ballot)
        if problem is not None:
            if poll is None:
                # No vote can be stored for a poll that does not exist: no need to look for one.
                raise problem
            # A retry of a vote accepted earlier gets its receipt whatever changed since (the poll
            # may have closed while the first response was lost).
            replay = await self._replay(vote.idempotency_key, ballot.request_hash)
            if replay is not None:
                return replay
            raise problem
        return await self.committer.commit(ballot)

    async def _admission_problem(self, ballot: Ballot) -> problems.Problem | None:
        # The signature first: only the key's holder may bind an invitation to it.
        if not ballot.signature_verifies():
            return problems.InvalidSignature(INVALID_SIGNATURE)
        if self.eligibility_key is None:
            return problems.ServiceUnavailable("The service has not loaded its eligibility key.")
        vote = ballot.vote
        return await invitations.admit(
            self.db, self.eligibility_key, vote.poll_id, ballot.public_key, vote.invitation, self.clock()
        )

    async def _replay(self, idempotency_key: str, request_hash: bytes) -> Accepted | None:
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(votes.c.request_hash, votes.c.receipt).where(votes.c.idempotency_key == idempotency_key)
                )
            ).first()
        if row is None:
            return None
        answer = stored_answer(row.request_hash, row.receipt, request_hash)
        if isinstance(answer, problems.Problem):
            raise answer
        # Another worker's commit is visible before its WAL fsync is done: wait for one.
        await self.committer.engine.durable()
        return answer
