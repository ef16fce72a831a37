"""The sequencer: appends each poll's newly accepted votes to its log and signs a checkpoint.

It runs beside the vote path, never in it: a receipt is sent at commit, and the vote reaches a
published checkpoint within INTERVAL_S plus one integration (docs/ballot-log.md). One sequencer
per poll across every worker and node: on SQLite the write transaction's lock, on PostgreSQL a
transaction-scoped advisory lock per poll. Each checkpoint is made from the stored one and the
tiles that match it, so none ever contradicts an earlier one.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable

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


async def integrate(
    db: Database, poll_id: str, signer: LogSigner, origin: str, *, now: Callable[[], float] = time.time
) -> store.StoredCheckpoint | None:
    """Extends the poll's log by the votes accepted since its checkpoint; the new checkpoint, or
    None when there was nothing to add."""
    async with db.write() as conn:
        if not db.is_sqlite:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": advisory_key(poll_id)})
        current = await store.load_checkpoint(conn, poll_id)
        size = current.size if current else 0
        total = await store.vote_count(conn, poll_id)
        if total is None or total <= size:
            return None
        entries = await store.load_entries(conn, poll_id, size, min(total - size, MAX_ENTRIES_PER_INTEGRATION))
        edge = await _edge_of(conn, poll_id, size, current.root if current else EMPTY_ROOT)
        edge.append(leaf_hash(entry) for entry in entries)
        checkpoint = Checkpoint(origin, edge.size, edge.root())
        made = store.StoredCheckpoint(edge.size, checkpoint.root, signer.sign(checkpoint), int(now() * 1000))
        await store.save_tiles(conn, poll_id, edge.changed)
        await store.save_checkpoint(conn, poll_id, made, is_new=current is None)
        return made


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


class Integrator:
    """One background task per worker that keeps every poll's log within a round of its votes."""

    def __init__(self, db: Database, signer: LogSigner, origin_of: Callable[[str], str]) -> None:
        self.db = db
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
        async with self.db.read() as conn:
            behind = await store.polls_behind(conn)
        made = 0
        for poll_id in behind:
            if poll_id in self.broken:
                continue
            try:
                while await integrate(self.db, poll_id, self.signer, self.origin_of(poll_id)):
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
