"""Group commit: votes accepted by one worker are written in one transaction per short window.

Each request still waits for its own vote's commit to be on disk before it gets a receipt; only
the disk flush is shared (app/votes/wal_sync.py). The rules decided inside the transaction
(app/votes/acceptance.py) see the whole batch, so every vote gets exactly the answer it would
have had alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError

from app.core import problems
from app.core.keys import KeyRing
from app.core.protocol import Ballot, Vote
from app.votes.acceptance import Accepted, Decision, decide
from app.votes.commit_engine import CommitEngine, RunInTransaction
from app.votes.crypto import CryptoHelper
from app.votes.receipts import receipt_payload, signed_receipt
from app.votes.rows import VoteRow, count_votes, insert_votes

MAX_VOTES_PER_COMMIT = 256  # bounds one transaction's size and the latency of its last vote
# Votes checked per message to the crypto helper: a wave of requests read in one round of the
# event loop goes in several, so the first are checked (and written) while the rest still are.
CHECK_CHUNK_VOTES = 16
BATCH_WINDOW_S = 0.002  # how long a lone vote waits for company; the commit itself takes longer
PG_DEADLOCK = "40P01"

log = logging.getLogger(__name__)


Outcome = Accepted | problems.Problem | BaseException


@dataclass(slots=True)
class _Pending:
    ballot: Ballot
    future: asyncio.Future[Accepted]
    check: asyncio.Future[set[int]] | None = None
    """The check of the signatures sent with this vote's (forged positions within them)."""
    position: int = 0

    def forged(self) -> bool:
        check = self.check
        if check is None or check.cancelled() or check.exception() is not None:
            return not self.ballot.signature_verifies()  # cannot happen: checks fall back by themselves
        return self.position in check.result()


class GroupCommitter:
    """Votes queue here; one task on the event loop commits them in batches.

    A pipeline of three stages, each overlapping the others:
    - each vote's signature check starts as it arrives: the votes read in one round of the event
      loop go to the crypto helper (app/votes/crypto.py) in messages of CHECK_CHUNK_VOTES;
    - the writer takes every checked vote once it holds the write lock, and commits them. Its
      statements run on the event loop's own thread (CommitEngine.commit), where a thread of their
      own would wait for the GIL at every call;
    - the batch's answers go out once the WAL fsync that follows its commit is done, while the
      writer is already on the next batch.
    """

    def __init__(
        self,
        engine: CommitEngine,
        clock: Callable[[], int],
        *,
        crypto: CryptoHelper | None = None,
        max_votes: int = MAX_VOTES_PER_COMMIT,
        window_s: float = BATCH_WINDOW_S,
    ) -> None:
        self.engine = engine
        self.crypto = crypto or CryptoHelper()
        self.keys: KeyRing | None = None
        """The receipt keys, loaded at startup (VoteService.open); no receipt is signed before."""
        self.clock = clock
        self.max_votes = max_votes
        self.window_s = window_s
        self.on_accepted: list[Callable[[str, str], None]] = []
        # A plain list and one wake-up future: an asyncio.Queue with a timeout per vote costs a
        # task per vote on the event loop, which is the bottleneck of the whole service.
        self._pending: list[_Pending] = []
        self._unchecked: list[_Pending] = []
        self._checks_scheduled = False
        self._wakeup: asyncio.Future[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._writer: asyncio.Task[None] | None = None
        self._syncing: set[asyncio.Future[None]] = set()
        """Commits whose answers wait for their fsync."""

    def enqueue(self, ballot: Ballot) -> asyncio.Future[Accepted]:
        """Queues a vote whose poll checks passed; the future resolves once it (or the earlier
        vote under its key) is committed to disk, or with the problem that stopped it (a forged
        signature among them: signatures are verified in batches, see app/votes/crypto.py)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Accepted] = loop.create_future()
        pending = _Pending(ballot, future)
        self._pending.append(pending)
        self._unchecked.append(pending)
        if len(self._unchecked) >= CHECK_CHUNK_VOTES:
            self._send_checks()  # the helper starts on these while the loop reads the rest
        elif not self._checks_scheduled:
            self._checks_scheduled = True
            loop.call_soon(self._send_checks_soon)  # once this round's votes are all in
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
        if self._syncing:
            await asyncio.wait(self._syncing)
        await self.crypto.close()
        await self.engine.close()

    def _send_checks(self) -> None:
        chunk, self._unchecked = self._unchecked, []
        if not chunk:
            return
        check = self.crypto.check([pending.ballot for pending in chunk])
        for position, pending in enumerate(chunk):
            pending.check = check
            pending.position = position

    def _send_checks_soon(self) -> None:
        self._checks_scheduled = False
        self._send_checks()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                self._idle.set()
                self._wakeup = loop.create_future()
                await self._wakeup
                # A vote that finds the writer idle waits briefly for company. Votes that
                # arrive during a commit have waited already: they go in the next one at once.
                if self.window_s > 0 and len(self._pending) < self.max_votes:
                    await asyncio.sleep(self.window_s)
            self._send_checks()  # votes of this very round need not wait for the next
            oldest = self._pending[0].check
            if oldest is not None and not oldest.done():
                await asyncio.wait([oldest])
            await self._write_next()

    def _checked_prefix(self) -> list[_Pending]:
        """The oldest votes whose checks are done (answers come in order), up to a batch."""
        count = 0
        for pending in self._pending[: self.max_votes]:
            # Not sent yet (it came in while the writer waited for the lock) or not answered yet.
            if pending.check is None or not pending.check.done():
                break
            count += 1
        batch = self._pending[:count]
        del self._pending[:count]
        return batch

    async def _write_next(self) -> None:
        """Commits the checked votes as one batch, chosen once the write lock is held: votes that
        arrive while another worker commits join this batch instead of waiting for the next.

        Returns once committed; the batch's answers go out when the commit is on disk, while
        the next batch is being written (app/votes/wal_sync.py)."""
        batch: list[_Pending] = []

        def choose() -> list[_Pending]:
            if not batch:
                batch.extend(self._checked_prefix())
            return batch

        try:
            outcomes, durable = await self._write_batch(choose)
        except (IntegrityError, DBAPIError) as error:
            choose()
            if not _is_race(error):
                _fail(batch, error)
                return
            # Another worker or node committed a conflicting vote meanwhile: redo one by one, so
            # that each vote sees the committed rows and gets its own answer.
            log.info("batch of %d votes raced a concurrent commit; retrying one by one", len(batch))
            _answer(batch, [await self._write_alone(pending) for pending in batch])
            return
        except Exception as error:  # the database is down or broken: nothing was receipted
            choose()
            _fail(batch, error)
            return
        self._syncing.add(durable)
        durable.add_done_callback(lambda _: self._on_durable(durable, batch, outcomes))

    def _on_durable(self, durable: asyncio.Future[None], batch: list[_Pending], outcomes: list[Outcome]) -> None:
        self._syncing.discard(durable)
        if durable.cancelled() or durable.exception() is not None:
            # Committed but not known to be on disk: no receipt, and none from this worker until
            # it restarts (app/votes/wal_sync.py). A retry then finds the vote if the disk kept it.
            _fail(batch, durable.exception() or asyncio.CancelledError())
            return
        _answer(batch, outcomes)
        for pending, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, Accepted) and outcome.created:
                self._tell_listeners(pending.ballot.vote)

    async def _write_alone(self, pending: _Pending) -> Outcome:
        for _ in range(2):
            try:
                outcomes, durable = await self._write_batch(lambda: [pending])
                await durable
                if isinstance(outcomes[0], Accepted) and outcomes[0].created:
                    self._tell_listeners(pending.ballot.vote)
                return outcomes[0]
            except (IntegrityError, DBAPIError) as error:
                if not _is_race(error):
                    return error
                last: BaseException = error
            except Exception as error:
                return error
        return last

    async def _write_batch(
        self, choose: Callable[[], Sequence[_Pending]]
    ) -> tuple[list[Accepted | problems.Problem], asyncio.Future[None]]:
        """Commits the votes `choose` gives once the transaction has begun; the future resolves
        when that commit is on disk, and not one receipt may go out before."""
        if self.keys is None:
            raise problems.ServiceUnavailable("The receipt keys are not loaded yet.", headers={"Retry-After": "1"})
        key = self.keys.active

        async def work(run: RunInTransaction) -> list[Accepted | problems.Problem]:
            batch = choose()
            ballots = [pending.ballot for pending in batch]
            forged = {index for index, pending in enumerate(batch) if pending.forged()}
            decision = await run(lambda conn: decide(conn, ballots, forged, self.clock))
            payloads = receipt_payloads(decision, key.kid)
            # Signed while the transaction is open (in the helper process, from 8 votes), so
            # that each receipt is stored with its vote.
            signatures = await self.crypto.sign(key, payloads)
            return await run(lambda conn: store_ballots(conn, decision, key.kid, payloads, signatures))

        return await self.engine.commit(work)

    def _tell_listeners(self, vote: Vote) -> None:
        for listener in self.on_accepted:
            try:
                listener(vote.poll_id, vote.option_id)
            except Exception:  # the vote is committed: a listener's failure must not turn it into an error
                log.exception("on_accepted listener failed")


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


def _answer(batch: Sequence[_Pending], outcomes: Sequence[Outcome]) -> None:
    for pending, outcome in zip(batch, outcomes, strict=True):
        if pending.future.done():
            continue
        if isinstance(outcome, BaseException):
            pending.future.set_exception(outcome)
        else:
            pending.future.set_result(outcome)


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
