"""Group commit: votes accepted by one worker are written in one transaction per short window.

Each request still waits for its own vote's commit (fsynced) before it gets a receipt; only the
disk flush is shared. Idempotency and the one-vote-per-device rule are decided inside the
transaction, so a batch gives every vote exactly the answer it would have had alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError

from app import problems
from app.crypto_helper import CryptoHelper
from app.db import Database, RunInTransaction
from app.keys import KeyRing
from app.protocol import Ballot, Vote
from app.receipts import receipt_payload, signed_receipt
from app.vote_rows import VoteRow, count_votes, devices_that_voted, insert_votes, stored_by_key, take_seqs

MAX_BATCH_VOTES = 256  # bounds one transaction's size and the latency of its last vote
BATCH_WINDOW_S = 0.002  # how long a lone vote waits for company; the commit itself takes longer
PG_DEADLOCK = "40P01"
KEY_REUSED = "This idempotency key was already used for a different vote."
ALREADY_VOTED = "This device's key has already cast a vote in this poll."
INVALID_SIGNATURE = "The signature does not verify against public_key."

log = logging.getLogger("app.commits")


@dataclass(frozen=True, slots=True)
class Accepted:
    receipt: bytes
    created: bool
    """True only for the request that caused the commit (201); every replay gets False (200)."""


@dataclass(slots=True)
class _Pending:
    ballot: Ballot
    future: asyncio.Future[Accepted]


@dataclass(slots=True)
class _Checked:
    """A batch taken from the queue, and the check of its signatures (running or done)."""

    batch: list[_Pending]
    forged: asyncio.Future[set[int]]


class GroupCommitter:
    """Votes queue here; one task on the event loop commits them in batches, as a pipeline.

    A batch's signatures are checked (app/crypto_helper.py) while the batch before it is written.
    Its statements run on the event loop's own thread (db.transact), where a thread of their own
    would wait for the GIL at every call; only COMMIT's fsync waits on a thread.
    """

    def __init__(
        self,
        db: Database,
        keys: KeyRing,
        clock: Callable[[], int],
        *,
        crypto: CryptoHelper | None = None,
        max_votes: int = MAX_BATCH_VOTES,
        window_s: float = BATCH_WINDOW_S,
    ) -> None:
        self.db = db
        self.crypto = crypto or CryptoHelper()
        self.keys = keys
        self.clock = clock
        self.max_votes = max_votes
        self.window_s = window_s
        self.on_accepted: list[Callable[[str, str], None]] = []
        # A plain list and one wake-up future: an asyncio.Queue with a timeout per vote costs a
        # task per vote on the event loop, which is the bottleneck of the whole service.
        self._pending: list[_Pending] = []
        self._wakeup: asyncio.Future[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._writer: asyncio.Task[None] | None = None

    def enqueue(self, ballot: Ballot) -> asyncio.Future[Accepted]:
        """Queues a vote whose poll checks passed; the future resolves once it (or the earlier
        vote under its key) is committed to disk, or with the problem that stopped it (a forged
        signature among them: signatures are verified per batch, see app/crypto_helper.py)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Accepted] = loop.create_future()
        self._pending.append(_Pending(ballot, future))
        self._idle.clear()
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._run(), name="group-commit")
        elif self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)
        return future

    async def commit(self, ballot: Ballot) -> Accepted:
        return await asyncio.shield(self.enqueue(ballot))

    async def close(self) -> None:
        """Finishes every queued vote, then stops the writer."""
        if self._writer is not None and not self._writer.done():
            await self._idle.wait()
            self._writer.cancel()
        await self.crypto.close()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        checked: _Checked | None = None
        while True:
            if checked is None:
                if not self._pending:
                    self._idle.set()
                    self._wakeup = loop.create_future()
                    await self._wakeup
                    # A vote that finds the writer idle waits briefly for company. Votes that
                    # arrive during a commit have waited already: they go in the next one at once.
                    if self.window_s > 0 and len(self._pending) < self.max_votes:
                        await asyncio.sleep(self.window_s)
                checked = self._check_next()
            batch = checked.batch
            try:
                forged = await checked.forged
            except Exception as error:  # crypto.forged falls back by itself; this is a bug
                _fail(batch, error)
                checked = None
                continue
            # A pipeline: the next batch's signatures are checked (in the helper process) while
            # this one is written and committed.
            checked = self._check_next() if self._pending else None
            await self._write(batch, forged)

    def _check_next(self) -> _Checked:
        batch = self._pending[: self.max_votes]
        del self._pending[: self.max_votes]
        forged = asyncio.ensure_future(self.crypto.forged([pending.ballot for pending in batch]))
        return _Checked(batch, forged)

    async def _write(self, batch: list[_Pending], forged: set[int]) -> None:
        try:
            outcomes = await self._write_batch(batch, forged)
        except (IntegrityError, DBAPIError) as error:
            if not _is_race(error):
                _fail(batch, error)
                return
            # Another worker or node committed a conflicting vote meanwhile: redo one by one, so
            # that each vote sees the committed rows and gets its own answer.
            log.info("batch of %d votes raced a concurrent commit; retrying one by one", len(batch))
            outcomes = [await self._write_alone(pending, index in forged) for index, pending in enumerate(batch)]
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

    async def _write_alone(self, pending: _Pending, forged: bool) -> Accepted | BaseException:
        for _ in range(2):
            try:
                return (await self._write_batch([pending], {0} if forged else set()))[0]
            except (IntegrityError, DBAPIError) as error:
                if not _is_race(error):
                    return error
                last: BaseException = error
            except Exception as error:
                return error
        return last

    async def _write_batch(self, batch: Sequence[_Pending], forged: set[int]) -> list[Accepted | problems.Problem]:
        ballots = [pending.ballot for pending in batch]
        key = self.keys.active

        async def work(run: RunInTransaction) -> tuple[list[Accepted | problems.Problem], Decision]:
            decision = await run(lambda conn: decide_ballots(conn, ballots, forged, self.clock))
            payloads = receipt_payloads(decision, key.kid)
            # Signed while the transaction is open (in the helper process for a large batch),
            # so that each receipt is stored with its vote.
            signatures = await self.crypto.sign(key, payloads)
            return await run(lambda conn: store_ballots(conn, decision, key.kid, payloads, signatures)), decision

        outcomes, decision = await self.db.transact(work)
        # transact returned: the transaction is committed (fsynced), so receipts may go out.
        for _, ballot in decision.fresh:
            self._tell_listeners(ballot.vote)
        return outcomes

    def _tell_listeners(self, vote: Vote) -> None:
        for listener in self.on_accepted:
            try:
                listener(vote.poll_id, vote.option_id)
            except Exception:  # the vote is committed: a listener's failure must not turn it into an error
                log.exception("on_accepted listener failed")


@dataclass(slots=True)
class Decision:
    """What a batch's transaction decided before its receipts are signed."""

    outcomes: list[Accepted | problems.Problem | None]
    fresh: list[tuple[int, Ballot]]
    """The new votes, with their positions in the batch."""
    seqs: list[int]
    accepted_at: int


def decide_ballots(conn: Connection, batch: Sequence[Ballot], forged: set[int], clock: Callable[[], int]) -> Decision:
    """Decides each vote of a batch inside its transaction, and reserves the new ones' positions.

    Idempotency and the one-vote-per-device rule are checked here, against committed rows and
    within the batch, so each vote gets exactly the answer it would have had alone. A forged
    vote (its position is in `forged`) is refused, unless its key names another vote: then the
    key's reuse is the answer, as for any other refused vote.
    """
    outcomes: list[Accepted | problems.Problem | None] = [None] * len(batch)
    fresh: list[tuple[int, Ballot]] = []
    # Devices first, keys second: on PostgreSQL each statement sees what was committed when it
    # started, so a rival commit landing between the two shows its key (a replay, which takes
    # precedence) rather than only its device (which would wrongly say "already voted").
    voted = devices_that_voted(conn, [(b.vote.poll_id, b.public_key) for b in batch])
    stored = stored_by_key(conn, [b.vote.idempotency_key for b in batch])
    for index, ballot in enumerate(batch):
        vote = ballot.vote
        device = (vote.poll_id, ballot.public_key)
        if vote.idempotency_key in stored:
            # A forged vote never matches a stored hash: that vote's signature was verified.
            request_hash, receipt = stored[vote.idempotency_key]
            outcomes[index] = (
                Accepted(receipt=receipt, created=False)
                if request_hash == ballot.request_hash
                else problems.IdempotencyKeyReused(KEY_REUSED)
            )
        elif index in forged:
            outcomes[index] = problems.InvalidSignature(INVALID_SIGNATURE)
        elif device in voted:
            outcomes[index] = problems.AlreadyVoted(ALREADY_VOTED)
        else:
            voted.add(device)
            fresh.append((index, ballot))
    seqs = take_seqs(conn, [b.vote.poll_id for _, b in fresh]) if fresh else []
    return Decision(outcomes, fresh, seqs, clock())


def receipt_payloads(decision: Decision, kid: str) -> list[bytes]:
    return [
        receipt_payload(kid, ballot.vote, seq, decision.accepted_at, ballot.ballot_hash)
        for (_, ballot), seq in zip(decision.fresh, decision.seqs, strict=True)
    ]


def store_ballots(
    conn: Connection, decision: Decision, kid: str, payloads: list[bytes], signatures: list[bytes]
) -> list[Accepted | problems.Problem]:
    """Writes the new votes with their receipts, in the transaction that decided them."""
    rows = []
    for (index, ballot), seq, payload, signature in zip(
        decision.fresh, decision.seqs, payloads, signatures, strict=True
    ):
        receipt = signed_receipt(kid, payload, signature)
        rows.append(_row(ballot, seq, decision.accepted_at, receipt))
        decision.outcomes[index] = Accepted(receipt=receipt, created=True)
    if rows:
        insert_votes(conn, rows)
        count_votes(conn, [ballot.vote for _, ballot in decision.fresh])
    return decision.outcomes  # type: ignore[return-value]  # every slot is filled now


def _is_race(error: DBAPIError) -> bool:
    return isinstance(error, IntegrityError) or getattr(error.orig, "sqlstate", None) == PG_DEADLOCK


def _fail(batch: Sequence[_Pending], error: BaseException) -> None:
    log.warning("a batch of %d votes was not committed: %s", len(batch), error)
    for pending in batch:
        if not pending.future.done():
            pending.future.set_exception(error)


def _row(ballot: Ballot, seq: int, accepted_at: int, receipt: bytes) -> VoteRow:
    vote = ballot.vote
    return (
        vote.idempotency_key,
        vote.poll_id,
        seq,
        vote.vote_id,
        vote.option_id,
        ballot.public_key,
        ballot.signature,
        vote.created_at,
        accepted_at,
        ballot.request_hash,
        receipt,
    )
