"""Voids: the seqs that no vote will ever take, so that the log can go on past them.

On PostgreSQL a vote takes its seq from its poll's sequence (app/storage/poll_locks.py), which does not
roll back: a transaction that fails after taking seqs (a node killed mid-commit, a race with
another node's vote) leaves them unused, and the log, whose entry i is the vote with seq i + 1,
would wait for them forever. A gap that lasts longer than any vote transaction is voided: under
the poll's admission lock, held exclusively, no vote transaction of the poll is in flight, so a
seq below a committed one that no committed vote holds can never be taken again. It becomes a
void entry (app/ballot_log/entries.py): counted by no one, and visible to every auditor.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.engine import Connection

from app.storage.driver_sql import Marks
from app.storage.poll_locks import hold_admission_exclusively

GAP_GRACE_S = 0.3
"""How long a gap may be a vote still committing: far longer than a vote transaction, and short
enough that the votes behind it still reach a checkpoint within the log's 1 s promise."""
MAX_VOIDS_PER_ROUND = 4096


def committed_beyond(conn: Connection, poll_id: str, size: int) -> int | None:
    """The highest seq committed past a log of this size, within one round's reach; None when no
    vote lies beyond it. Asked once the log stops at `size`: then seq size + 1 is a gap."""
    marks = Marks(conn)
    return conn.exec_driver_sql(
        f"SELECT max(seq) FROM votes WHERE poll_id = {marks.take(1)} AND seq > {marks.take(1)} "
        f"AND seq <= {marks.take(1)}",
        (poll_id, size, size + MAX_VOIDS_PER_ROUND),
    ).scalar()


def void_dead_seqs(conn: Connection, poll_id: str, after: int, upto: int) -> list[int]:
    """Inside a write transaction: voids each seq in (after, upto] that no committed vote holds,
    once no vote transaction of the poll is in flight; the seqs voided. `upto` must be a committed
    vote's seq: every seq below it was handed out before it."""
    hold_admission_exclusively(conn, poll_id)
    marks = Marks(conn)
    taken = conn.exec_driver_sql(
        f"SELECT seq FROM votes WHERE poll_id = {marks.take(1)} AND seq > {marks.take(1)} AND seq <= {marks.take(1)} "
        f"UNION ALL SELECT seq FROM ballot_log_voids WHERE poll_id = {marks.take(1)} AND seq > {marks.take(1)} "
        f"AND seq <= {marks.take(1)}",
        (poll_id, after, upto) * 2,
    )
    held = {seq for (seq,) in taken}
    dead = [seq for seq in range(after + 1, upto + 1) if seq not in held]
    if dead:
        marks = Marks(conn)
        conn.exec_driver_sql(
            f"INSERT INTO ballot_log_voids (poll_id, seq) VALUES ({marks.take(2)})", [(poll_id, seq) for seq in dead]
        )
    return dead


@dataclass
class GapWatch:
    """The gap each poll's log stopped at, and since when (a sequencer's own clock)."""

    clock: Callable[[], float] = time.monotonic
    seen: dict[str, tuple[int, float]] = field(default_factory=dict)

    def due(self, poll_id: str, size: int) -> bool:
        """True once the log of this poll has stopped at `size` for GAP_GRACE_S."""
        now = self.clock()
        at, since = self.seen.get(poll_id, (None, now))
        if at != size:
            self.seen[poll_id] = (size, now)
            return False
        return now - since >= GAP_GRACE_S

    def mended(self, poll_id: str) -> None:
        self.seen.pop(poll_id, None)
