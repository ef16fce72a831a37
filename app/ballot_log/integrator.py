"""The sequencer: appends each poll's newly accepted votes to its log and signs a checkpoint.

It runs beside the vote path, never in it: a receipt is sent at commit, and the vote reaches a
published checkpoint within INTERVAL_S plus one integration (docs/ballot-log.md).

The work (reading the new votes, hashing, signing) happens outside any write transaction; the
write is one short transaction through the vote path's own commit engine, so it queues with the
group commits instead of holding SQLite's lock across the event loop. Inside it, under the lock
(SQLite's write lock; on PostgreSQL a transaction-scoped advisory lock per poll), the stored
checkpoint must still be the one the work started from; if another sequencer got there first,
this one's work is dropped. So there is one history per poll, and each checkpoint extends the
stored one with the tiles that match it: none ever contradicts an earlier one.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.ballot_log import store
from app.ballot_log.checkpoint import Checkpoint
from app.ballot_log.log_keys import LogSigner
from app.ballot_log.merkle import EMPTY_ROOT, leaf_hash
from app.ballot_log.tiles import TILE_HEIGHT, TILE_WIDTH, TreeEdge
from app.storage.db import Database

INTERVAL_S = 0.2  # how often a worker looks for polls whose log is behind
MAX_ENTRIES_PER_INTEGRATION = 4096  # keeps each write transaction short; the next round goes on
ADVISORY_LOCK_SPACE = b"ballot-log/"

log = logging.getLogger(__name__)


class LogIntegrityError(RuntimeError):
    """The stored tiles, checkpoint and votes disagree: the log stops growing, loudly."""


def advisory_key(poll_id: str) -> int:
    """A signed 64-bit PostgreSQL advisory lock key for the poll's sequencer."""
    digest = hashlib.sha256(ADVISORY_LOCK_SPACE + poll_id.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def open_edge_tiles(size: int) -> list[tuple[int, int]]:
    """The partial tiles of a tree of this size: what appending to it starts from."""
    wanted, level = [], 0
    while size >> (TILE_HEIGHT * level):
        index, width = divmod(size >> (TILE_HEIGHT * level), TILE_WIDTH)
        if width:
            wanted.append((level, index))
        level += 1
    return wanted


Commit = Callable[[Callable[[Any], Awaitable[Any]]], Awaitable[tuple[Any, "asyncio.Future[None]"]]]
"""The commit engine's `commit(work)`: `work(run)` calls `run(fn)` to run `fn(connection)` in
the transaction; it returns the result and a future that resolves once the commit is on disk."""


class Superseded(Exception):
    """Another sequencer extended the log since this one read it."""


async def integrate(
    db: Database,
    poll_id: str,
    signer: LogSigner,
    origin: str,
    *,
    commit: Commit | None = None,
    now: Callable[[], float] = time.time,
) -> store.StoredCheckpoint | None:
    """Extends the poll's log by the votes accepted since its checkpoint; the new checkpoint, or
    None when there was nothing to add or another sequencer added it first."""
    async with db.read() as conn:
        current = await store.load_checkpoint(conn, poll_id)
        size = current.size if current else 0
        base = (size, current.root) if current else None
        total = await store.vote_count(conn, poll_id)
        if total is None or total <= size:
            return None
        entries = await store.load_entries(conn, poll_id, size, min(total - size, MAX_ENTRIES_PER_INTEGRATION))
        edge = await _edge_of(conn, poll_id, size, current.root if current else EMPTY_ROOT)
    edge.append(leaf_hash(entry) for entry in entries)
    checkpoint = Checkpoint(origin, edge.size, edge.root())
    made = store.StoredCheckpoint(edge.size, checkpoint.root, signer.sign(checkpoint), int(now() * 1000))

    def write(conn: Any) -> None:
        if not db.is_sqlite:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": advisory_key(poll_id)})
        if store.checkpoint_size(conn, poll_id) != base:
            raise Superseded()
        store.save(conn, poll_id, made, edge.changed, is_new=base is None)

    async def work(run: Callable[[Callable[[Any], None]], Awaitable[None]]) -> None:
        await run(write)

    try:
        _, durable = await (commit or _plain_commit(db))(work)
    except Superseded:
        return None
    await durable  # served only once on disk, as a receipt is
    return made


def _plain_commit(db: Database) -> Commit:
    """A commit engine's interface over the database handle's own write transaction."""

    async def commit(work: Callable[[Any], Awaitable[Any]]) -> tuple[Any, asyncio.Future[None]]:
        async with db.write() as conn:
            result = await work(conn.run_sync)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return result, done

    return commit


async def _edge_of(conn: AsyncConnection, poll_id: str, size: int, root: bytes) -> TreeEdge:
    stored = await store.load_tiles(conn, poll_id, open_edge_tiles(size))

    def load(level: int, index: int) -> bytes:
        if (level, index) not in stored:
            raise LogIntegrityError(f"poll {poll_id}: tile {level}/{index} of its log is missing")
        return stored[(level, index)]

    try:
        edge = TreeEdge(size, load)
    except ValueError as error:
        raise LogIntegrityError(f"poll {poll_id}: {error}") from None
    if edge.root() != root:
        raise LogIntegrityError(f"poll {poll_id}: the stored tiles do not match its last checkpoint")
    return edge


@contextmanager
def _held(path: Path | None) -> Iterator[bool]:
    """A non-blocking lock on the file, if there is one: True while this process holds it."""
    if path is None:
        yield True
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing the descriptor releases the lock


class Integrator:
    """One background task per worker that keeps every poll's log within a round of its votes."""

    def __init__(
        self,
        db: Database,
        signer: LogSigner,
        origin_of: Callable[[str], str],
        commit: Commit | None = None,
        node_lock: Path | None = None,
        durability: Callable[[], BaseException | None] | None = None,
    ) -> None:
        self.db = db
        self.durability = durability
        self.commit = commit
        self.node_lock = node_lock
        self.signer = signer
        self.origin_of = origin_of
        self.task: asyncio.Task[None] | None = None
        self.broken: dict[str, str] = {}  # poll → why its log stopped; /readyz could show it

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name="ballot-log-integrator")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None

    async def run_once(self) -> int:
        """Integrates every poll that is behind; how many checkpoints it made."""
        # The workers of one node take turns: the others' work would only be dropped.
        with _held(self.node_lock) as held:
            return await self._integrate_all() if held else 0

    async def _integrate_all(self) -> int:
        # The vote path's check that the database files are the ones it opened: once they are
        # not, nothing more is written here either (the votes get 503 and /readyz says why).
        if self.durability is not None and self.durability() is not None:
            return 0
        async with self.db.read() as conn:
            behind = await store.polls_behind(conn)
        made = 0
        for poll_id in behind:
            if poll_id in self.broken:
                continue
            try:
                while await integrate(self.db, poll_id, self.signer, self.origin_of(poll_id), commit=self.commit):
                    made += 1
            except (LogIntegrityError, LookupError) as error:
                self.broken[poll_id] = str(error)
                log.error("ballot log stopped: %s", error)
        return made

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # the database away, for instance: try again next round
                log.warning("ballot log integration failed; retrying", exc_info=True)
            await asyncio.sleep(INTERVAL_S)
