"""Group commit: votes accepted by one worker are written in one transaction per short window.

Each request still waits for its own vote's commit (fsynced) before it gets a receipt; only the
disk flush is shared. Idempotency and the one-vote-per-device rule are decided inside the
transaction, so a batch gives every vote exactly the answer it would have had alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import and_, case, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError

from app import problems
from app.db import Database
from app.keys import KeyRing, ReceiptKey
from app.protocol import Ballot, Vote
from app.receipts import issue_receipt
from app.schema import options, polls, votes

MAX_BATCH_VOTES = 256  # bounds one transaction's size and the latency of its last vote
BATCH_WINDOW_S = 0.002  # how long a lone vote waits for company; the commit itself takes longer
PG_DEADLOCK = "40P01"
KEY_REUSED = "This idempotency key was already used for a different vote."
ALREADY_VOTED = "This device's key has already cast a vote in this poll."

log = logging.getLogger("app.commits")


@dataclass(frozen=True, slots=True)
class Accepted:
    receipt: bytes
    created: bool
    """True only for the request that caused the commit (201); every replay gets False (200)."""


@dataclass(slots=True)
class _Pending:
    ballot: Ballot
    future: asyncio.Future[Accepted] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class GroupCommitter:
    def __init__(
        self,
        db: Database,
        keys: KeyRing,
        clock: Callable[[], int],
        *,
        max_votes: int = MAX_BATCH_VOTES,
        window_s: float = BATCH_WINDOW_S,
    ) -> None:
        self.db = db
        self.keys = keys
        self.clock = clock
        self.max_votes = max_votes
        self.window_s = window_s
        self.on_accepted: list[Callable[[str, str], None]] = []
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

    async def commit(self, ballot: Ballot) -> Accepted:
        """Returns once the vote (or the earlier vote under its key) is committed to disk."""
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._run(), name="group-commit")
        pending = _Pending(ballot)
        self._queue.put_nowait(pending)
        return await asyncio.shield(pending.future)

    async def close(self) -> None:
        """Finishes every queued vote, then stops the writer."""
        if self._writer is not None and not self._writer.done():
            await self._queue.join()
            self._writer.cancel()

    async def _run(self) -> None:
        while True:
            batch = await self._next_batch()
            try:
                await self._write(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _next_batch(self) -> list[_Pending]:
        batch = [await self._queue.get()]
        deadline = asyncio.get_running_loop().time() + self.window_s
        while len(batch) < self.max_votes:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        return batch

    async def _write(self, batch: list[_Pending]) -> None:
        try:
            outcomes = await self._write_batch(batch)
        except (IntegrityError, DBAPIError) as error:
            if not _is_race(error):
                _fail(batch, error)
                return
            # Another worker or node committed a conflicting vote meanwhile: redo one by one, so
            # that each vote sees the committed rows and gets its own answer.
            log.info("batch of %d votes raced a concurrent commit; retrying one by one", len(batch))
            outcomes = [await self._write_alone(pending) for pending in batch]
        except Exception as error:  # the database is down or broken: nothing was receipted
            _fail(batch, error)
            return
        for pending, outcome in zip(batch, outcomes, strict=True):
            if pending.future.done():
                continue
            if isinstance(outcome, BaseException):
                pending.future.set_exception(outcome)
            else:
                pending.future.set_result(outcome)

    async def _write_alone(self, pending: _Pending) -> Accepted | BaseException:
        for _ in range(2):
            try:
                return (await self._write_batch([pending]))[0]
            except (IntegrityError, DBAPIError) as error:
                if not _is_race(error):
                    return error
                last: BaseException = error
            except Exception as error:
                return error
        return last

    async def _write_batch(self, batch: Sequence[_Pending]) -> list[Accepted | problems.Problem]:
        ballots = [pending.ballot for pending in batch]
        outcomes, fresh = await self.db.run_write(
            lambda conn: write_ballots(conn, ballots, self.keys.active, self.clock)
        )
        # run_write returned: the transaction is committed (fsynced), so receipts may go out.
        for ballot in fresh:
            self._tell_listeners(ballot.vote)
        return outcomes

    def _tell_listeners(self, vote: Vote) -> None:
        for listener in self.on_accepted:
            try:
                listener(vote.poll_id, vote.option_id)
            except Exception:  # the vote is committed: a listener's failure must not turn it into an error
                log.exception("on_accepted listener failed")


def write_ballots(
    conn: Connection, batch: Sequence[Ballot], key: ReceiptKey, clock: Callable[[], int]
) -> tuple[list[Accepted | problems.Problem], list[Ballot]]:
    """Decides and writes a batch inside one transaction; returns each vote's outcome and the new ones.

    Idempotency and the one-vote-per-device rule are checked here, against committed rows and
    within the batch, so each vote gets exactly the answer it would have had alone.
    """
    outcomes: list[Accepted | problems.Problem | None] = [None] * len(batch)
    fresh: list[tuple[int, Ballot]] = []
    stored = _stored_by_key(conn, [b.vote.idempotency_key for b in batch])
    voted = _devices_that_voted(conn, [(b.vote.poll_id, b.public_key) for b in batch])
    for index, ballot in enumerate(batch):
        vote = ballot.vote
        device = (vote.poll_id, ballot.public_key)
        if vote.idempotency_key in stored:
            request_hash, receipt = stored[vote.idempotency_key]
            outcomes[index] = (
                Accepted(receipt=receipt, created=False)
                if request_hash == ballot.request_hash
                else problems.IdempotencyKeyReused(KEY_REUSED)
            )
        elif device in voted:
            outcomes[index] = problems.AlreadyVoted(ALREADY_VOTED)
        else:
            voted.add(device)
            fresh.append((index, ballot))
    if fresh:
        accepted_at = clock()
        seqs = _take_seqs(conn, [b.vote.poll_id for _, b in fresh])
        rows = []
        for (index, ballot), seq in zip(fresh, seqs, strict=True):
            receipt = issue_receipt(key, ballot.vote, seq, accepted_at, ballot.ballot_hash)
            rows.append(_row(ballot, seq, accepted_at, receipt))
            outcomes[index] = Accepted(receipt=receipt, created=True)
        conn.execute(insert(votes), rows)
        _count(conn, [b.vote for _, b in fresh])
    return outcomes, [b for _, b in fresh]  # type: ignore[return-value]  # every slot was filled


def _is_race(error: DBAPIError) -> bool:
    return isinstance(error, IntegrityError) or getattr(error.orig, "sqlstate", None) == PG_DEADLOCK


def _fail(batch: Sequence[_Pending], error: BaseException) -> None:
    log.warning("a batch of %d votes was not committed: %s", len(batch), error)
    for pending in batch:
        if not pending.future.done():
            pending.future.set_exception(error)


def _stored_by_key(conn: Connection, keys: list[str]) -> dict[str, tuple[bytes, bytes]]:
    rows = conn.execute(
        select(votes.c.idempotency_key, votes.c.request_hash, votes.c.receipt).where(votes.c.idempotency_key.in_(keys))
    )
    return {row.idempotency_key: (bytes(row.request_hash), bytes(row.receipt)) for row in rows}


def _devices_that_voted(conn: Connection, devices: list[tuple[str, bytes]]) -> set[tuple[str, bytes]]:
    by_poll: dict[str, list[bytes]] = {}
    for poll_id, public_key in devices:
        by_poll.setdefault(poll_id, []).append(public_key)
    # `poll_id = ? AND public_key IN (…)` per poll, OR-ed: index look-ups on SQLite and PostgreSQL
    # (a row-value `(poll_id, public_key) IN (…)` makes SQLite scan the whole index).
    rows = conn.execute(
        select(votes.c.poll_id, votes.c.public_key).where(
            or_(*(and_(votes.c.poll_id == poll_id, votes.c.public_key.in_(keys)) for poll_id, keys in by_poll.items()))
        )
    )
    return {(row.poll_id, bytes(row.public_key)) for row in rows}


def _take_seqs(conn: Connection, poll_ids: list[str]) -> list[int]:
    """Reserves consecutive positions per poll, in the order the votes came, in one statement."""
    wanted = Counter(poll_ids)
    result = conn.execute(
        update(polls)
        .where(polls.c.id.in_(sorted(wanted)))
        .values(vote_count=polls.c.vote_count + case(wanted, value=polls.c.id))
        .returning(polls.c.id, polls.c.vote_count)
    )
    next_seq = {row.id: row.vote_count - wanted[row.id] + 1 for row in result}
    seqs = []
    for poll_id in poll_ids:
        seqs.append(next_seq[poll_id])
        next_seq[poll_id] += 1
    return seqs


def _count(conn: Connection, accepted: list[Vote]) -> None:
    tally = Counter((vote.poll_id, vote.option_id) for vote in accepted)
    matches = {key: and_(options.c.poll_id == key[0], options.c.id == key[1]) for key in sorted(tally)}
    conn.execute(
        update(options)
        .where(or_(*matches.values()))
        .values(votes=options.c.votes + case(*((match, tally[key]) for key, match in matches.items()), else_=0))
    )


def _row(ballot: Ballot, seq: int, accepted_at: int, receipt: bytes) -> dict[str, object]:
    vote = ballot.vote
    return {
        "idempotency_key": vote.idempotency_key,
        "poll_id": vote.poll_id,
        "seq": seq,
        "vote_id": vote.vote_id,
        "option_id": vote.option_id,
        "public_key": ballot.public_key,
        "signature": ballot.signature,
        "created_at": vote.created_at,
        "accepted_at": accepted_at,
        "request_hash": ballot.request_hash,
        "receipt": receipt,
    }
