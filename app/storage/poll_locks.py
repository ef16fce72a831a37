"""A poll's locks and sequence on PostgreSQL, so that no row is updated by every vote of a poll.

Each poll has a sequence of its own (made by a trigger on `polls`, migration 0007): `nextval`
never waits for another transaction, where a counter row stays locked until its transaction's
commit, so that a poll took one transaction per commit latency, whichever node sent it. A
sequence does not roll back: a transaction that takes seqs and then fails leaves a gap, which the
ballot log's sequencer fills with a void entry once no transaction can still commit it
(app/ballot_log/voids.py).

The poll's admission lock is how the sequencer knows that: every vote transaction holds it shared
from before it takes seqs until it ends, and whoever must see no vote in flight (the sequencer
before it voids a gap, an organiser closing the poll) takes it exclusively. Shared holders never
wait for each other; an advisory lock writes nothing to any row.
"""

from __future__ import annotations

import hashlib

from sqlalchemy.engine import Connection

ADMISSION_LOCK_SPACE = b"poll-admission/"


def sequence_of(poll_id_sql: str) -> str:
    """SQL naming the sequence of the poll whose id `poll_id_sql` gives, as migration 0007's
    trigger names it. Computed from the poll's row in the statement: a `$1::regclass` would be
    resolved before any row is read, and fail for a poll removed since it was cached."""
    return f"('vote_seq_' || substr(encode(sha256(convert_to({poll_id_sql}, 'UTF8')), 'hex'), 1, 32))::regclass"


def poll_lock_key(space: bytes, poll_id: str) -> int:
    """A signed 64-bit PostgreSQL advisory lock key for one poll, in its own key space."""
    digest = hashlib.sha256(space + poll_id.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def admission_key(poll_id: str) -> int:
    return poll_lock_key(ADMISSION_LOCK_SPACE, poll_id)


def hold_admission_shared(conn: Connection, poll_id: str) -> None:
    """Inside a vote transaction, before it reads the poll or takes seqs (PostgreSQL only). A
    statement of its own: a statement's snapshot is taken when it starts, so a close committed
    while it waited would be missed by the very statement that waited."""
    conn.exec_driver_sql("SELECT pg_advisory_xact_lock_shared($1)", (admission_key(poll_id),))


def hold_admission_exclusively(conn: Connection, poll_id: str) -> None:
    """Waits until no vote transaction of the poll is in flight, and keeps new ones out until this
    transaction ends (PostgreSQL; SQLite's write lock does this for the whole database)."""
    if conn.dialect.paramstyle == "numeric_dollar":
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock($1)", (admission_key(poll_id),))
