"""The sequencer: appends each poll's newly accepted votes to its log and signs a checkpoint.

It runs beside the vote path, never in it: a receipt is sent at commit, and the vote reaches a
published checkpoint within INTERVAL_S plus one integration (docs/ballot-log.md).

The work (reading the new votes, hashing, signing) happens outside any write transaction; the
write is one short transaction that queues with the group commits: through the vote path's own
commit engine, or, on SQLite, in a helper process under the workers' write lock
(`SqliteSequencer` below), which keeps the whole round off the worker's event loop.
One worker per node sequences at a time (a file lock beside the database). Inside the write, under the lock
(SQLite's write lock; on PostgreSQL a transaction-scoped advisory lock per poll), the stored
checkpoint must still be the one the work started from; if another sequencer got there first,
this one's work is dropped. So there is one history per poll, and each checkpoint extends the
stored one with the tiles that match it: none ever contradicts an earlier one.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import msgspec
from nacl.signing import SigningKey
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import Connection

from app.ballot_log import store
from app.ballot_log.checkpoint import Checkpoint
from app.ballot_log.log_keys import LogSigner, origin_for
from app.ballot_log.merkle import EMPTY_ROOT, leaf_hash
from app.ballot_log.tiles import TILE_HEIGHT, TILE_WIDTH, TreeEdge
from app.ballot_log.voids import GapWatch, committed_beyond, void_dead_seqs
from app.core.helper_process import HelperProcess, copy_outcome, serve
from app.core.keys import KeyRing, ReceiptKey
from app.storage.db import Database, configure_sqlite
from app.storage.poll_locks import poll_lock_key
from app.storage.sqlite_files import Identity, SqliteFiles, identity_of

INTERVAL_S = 0.2  # how often a worker looks for polls whose log is behind
MAX_ENTRIES_PER_INTEGRATION = 4096  # keeps each write transaction short; the next round goes on
ADVISORY_LOCK_SPACE = b"ballot-log/"
ROUND_TIMEOUT_S = 60.0  # a round in the helper writes a few thousand entries; past this, it is hung
MAX_CACHED_EDGES = 1024  # polls whose tree edge the helper keeps (a few KiB each)

log = logging.getLogger(__name__)


class LogIntegrityError(RuntimeError):
    """The stored tiles, checkpoint and votes disagree: the log stops growing, loudly."""


def advisory_key(poll_id: str) -> int:
    """A signed 64-bit PostgreSQL advisory lock key for the poll's sequencer."""
    return poll_lock_key(ADVISORY_LOCK_SPACE, poll_id)


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


@dataclass(frozen=True, slots=True)
class Extension:
    """A poll's log extended in memory by the votes its checkpoint lacks: what one integration
    writes, provided the stored checkpoint is still `base` (size and root; None: no checkpoint)."""

    poll_id: str
    base: tuple[int, bytes] | None
    made: store.StoredCheckpoint
    changed: dict[tuple[int, int], bytes]
    edge: TreeEdge  # the tree's edge at `made`, for the next extension (EdgeCache)


class EdgeCache:
    """Tree edges kept between rounds, by poll, so that a round does not rebuild the edge from its
    tiles and hash it up to the root again. An edge serves only while the stored checkpoint is
    the one it was kept for (same size and root) and the stored partial tiles hold what it does:
    then the edge built from them would be this one, byte for byte. On any difference, or once
    taken by a round that then wrote nothing, it is gone and the tiles are checked in full again
    (`_edge_of`). The database stays the truth: this saves only recomputing what it holds."""

    def __init__(self, limit: int = MAX_CACHED_EDGES) -> None:
        self.limit = limit
        self._edges: dict[str, tuple[tuple[int, bytes], TreeEdge]] = {}

    def take(self, poll_id: str, size: int, root: bytes, stored: dict[tuple[int, int], bytes]) -> TreeEdge | None:
        """The kept edge, if it is the one these stored checkpoint and partial tiles make."""
        kept = self._edges.pop(poll_id, None)
        if kept is None or kept[0] != (size, root):
            return None
        edge = kept[1]
        for level, index in open_edge_tiles(size):
            at, hashes = edge.open_tiles[level]
            if at != index or not stored.get((level, index), b"").startswith(hashes):
                return None
        return edge

    def keep(self, extension: Extension) -> None:
        """After the extension is committed: its edge is the stored checkpoint's."""
        edge = extension.edge
        edge.changed = {}  # stored now; the next extension writes only what it changes
        self._edges[extension.poll_id] = ((extension.made.size, extension.made.root), edge)
        if len(self._edges) > self.limit:
            del self._edges[next(iter(self._edges))]  # the poll integrated longest ago


def extend(
    conn: Connection,
    poll_id: str,
    signer: LogSigner,
    origin: str,
    now: Callable[[], float] = time.time,
    edges: EdgeCache | None = None,
) -> Extension | None:
    """Reads what the poll's log lacks and makes its next checkpoint (no write); None when the
    log is up to date. With `edges`, the tree's edge comes from there when it is the stored one."""
    current = store.checkpoint_of(conn, poll_id)
    size = current.size if current else 0
    # As far as the seqs run without a gap: a later vote waits for the seq before it, to commit
    # or to be voided (app/ballot_log/voids.py).
    entries = store.entries_of(conn, poll_id, size, MAX_ENTRIES_PER_INTEGRATION)
    if not entries:
        return None
    edge = _edge_of(conn, poll_id, size, current.root if current else EMPTY_ROOT, edges)
    edge.append(leaf_hash(entry) for entry in entries)
    checkpoint = Checkpoint(origin, edge.size, edge.root())
    made = store.StoredCheckpoint(edge.size, checkpoint.root, signer.sign(checkpoint), int(now() * 1000))
    return Extension(poll_id, (size, current.root) if current else None, made, edge.changed, edge)


def write(conn: Connection, extension: Extension) -> None:
    """Stores the extension inside a write transaction, or raises Superseded if another sequencer
    moved the log on since it was read: under the lock, so no two histories are ever stored."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": advisory_key(extension.poll_id)})
    if store.checkpoint_size(conn, extension.poll_id) != extension.base:
        raise Superseded()
    store.save(conn, extension.poll_id, extension.made, extension.changed, is_new=extension.base is None)


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
        extension = await conn.run_sync(extend, poll_id, signer, origin, now)
    if extension is None:
        return None

    async def work(run: Callable[[Callable[[Any], None]], Awaitable[None]]) -> None:
        await run(lambda conn: write(conn, extension))

    try:
        _, durable = await (commit or _plain_commit(db))(work)
    except Superseded:
        return None
    await durable  # served only once on disk, as a receipt is
    return extension.made


async def void_gap(db: Database, poll_id: str, watch: GapWatch, *, commit: Commit | None = None) -> bool:
    """Voids the seqs the poll's log waits for in vain (app/ballot_log/voids.py), once its gap has
    lasted GAP_GRACE_S; True when it voided any, and the log can go on."""
    async with db.read() as conn:
        current = await store.load_checkpoint(conn, poll_id)
        size = current.size if current else 0
        upto = await conn.run_sync(committed_beyond, poll_id, size)
    if upto is None:
        watch.mended(poll_id)
        return False
    if not watch.due(poll_id, size):
        return False

    async def work(run: Callable[[Callable[[Any], list[int]]], Awaitable[list[int]]]) -> list[int]:
        return await run(lambda conn: void_dead_seqs(conn, poll_id, size, upto))

    dead, durable = await (commit or _plain_commit(db))(work)
    await durable
    watch.mended(poll_id)
    if dead:
        log.warning("poll %s: seqs %s were taken by votes that never committed; voided in its log", poll_id, dead)
    return bool(dead)


def _plain_commit(db: Database) -> Commit:
    """A commit engine's interface over the database handle's own write transaction."""

    async def commit(work: Callable[[Any], Awaitable[Any]]) -> tuple[Any, asyncio.Future[None]]:
        async with db.write() as conn:
            result = await work(conn.run_sync)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return result, done

    return commit


def _edge_of(conn: Connection, poll_id: str, size: int, root: bytes, edges: EdgeCache | None = None) -> TreeEdge:
    stored = store.tiles_of(conn, poll_id, open_edge_tiles(size))
    if edges is not None and (kept := edges.take(poll_id, size, root, stored)) is not None:
        return kept

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


class NodeLock:
    """The lock that makes one worker of a node its sequencer: a file lock, taken without waiting
    and then kept, so that the same worker (and its helper's kept tree edges) does every round
    until it stops or dies, when the kernel releases the lock and another worker takes it at its
    next round. No path: always held (one worker, or a database other processes lock for it)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._fd: int | None = None

    def hold(self) -> bool:
        if self.path is None or self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = None


# The SQLite sequencer's rounds run in a helper process, `python -m app.ballot_log.integrator`,
# rather than on a worker's event loop: reading the new votes, hashing them into the tree and
# signing took about 6% of a worker's busy time under load, time the loop now spends on votes.
# A round there does what `Integrator._integrate_all` does, through the same `extend` and
# `write`, with its own sync connection: the reads and the work outside any lock, then one short
# write transaction under the workers' write lock (the file lock on which group commits queue,
# app/votes/commit_engine.py), committed with synchronous=NORMAL and the WAL fsynced after the
# lock is released, as a group commit's is (app/votes/wal_sync.py). The answer comes after that
# fsync: a checkpoint is reported made only once it is on disk.


class SqliteSequencer:
    """The sequencer of one SQLite database, for the life of the helper process."""

    def __init__(self, path: str, lock_path: str) -> None:
        self.path = path
        self.lock_path = lock_path
        self.broken: dict[str, str] = {}
        self.identities: list[Identity] = []
        self.edges = EdgeCache()
        self._engine: Engine | None = None

    def round(self, seed: bytes, key_name: str, base_url: str, identities: list[Identity]) -> int:
        """Integrates every poll that is behind; how many checkpoints it made. `identities` are
        the database's and the WAL's as the worker opened them: should either file be another
        one now (deleted, replaced), the round stops there (the worker refuses votes already)."""
        self.identities = [tuple(identity) for identity in identities]
        if not self._files_unchanged():
            return 0
        signer = LogSigner(key_name, KeyRing([ReceiptKey("", SigningKey(seed))]))  # the key the worker signs with
        made = 0
        with self._connect().connect() as conn:
            with conn.begin():
                behind = store.polls_behind(conn)
            for poll_id in behind:
                if poll_id in self.broken:
                    continue
                try:
                    # Again only while a backlog fills whole integrations: each costs a signature,
                    # a root and an fsync, and looping until nothing was new made one tiny one after
                    # another under load, taking the workers' CPU. The votes that came meanwhile
                    # wait for the next round, INTERVAL_S on: within the 1 s the log promises.
                    while (added := self._integrate(conn, poll_id, signer, origin_for(base_url, poll_id))) > 0:
                        made += 1
                        if added < MAX_ENTRIES_PER_INTEGRATION:
                            break
                except (LogIntegrityError, LookupError) as error:
                    self.broken[poll_id] = str(error)
                    log.error("ballot log stopped: %s", error)
        return made

    def _integrate(self, conn: Connection, poll_id: str, signer: LogSigner, origin: str) -> int:
        """One integration of the poll: how many entries its new checkpoint added (0: none made)."""
        with conn.begin():  # one snapshot: the checkpoint, the votes and the tiles agree
            extension = extend(conn, poll_id, signer, origin, edges=self.edges)
        if extension is None:
            return 0
        lock = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not self._files_unchanged():
                return 0
            conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
            with conn.begin():
                write(conn, extension)
        except Superseded:
            return 0
        finally:
            conn.execution_options(sqlite_begin="BEGIN")
            os.close(lock)  # closing the descriptor releases the lock
        _fsync(f"{self.path}-wal")
        self.edges.keep(extension)
        return extension.made.size - (extension.base[0] if extension.base else 0)

    def open(self, identities: list[Identity]) -> int:
        """Opens the connection now, while the files are the worker's: a connection first opened
        after the WAL was deleted would make SQLite create another one, hiding the loss."""
        self.identities = [tuple(identity) for identity in identities]
        if self._files_unchanged():
            self._connect().connect().close()  # back to the pool, which keeps it open
        return 0

    def _files_unchanged(self) -> bool:
        return [identity_of(self.path), identity_of(f"{self.path}-wal")] == self.identities

    def _connect(self) -> Engine:
        if self._engine is None:
            # mode=rw: a database deleted under the service must not come back empty from here.
            url = f"sqlite+pysqlite:///file:{quote(self.path)}?mode=rw&uri=true"
            self._engine = create_engine(url)  # its pool keeps the connection from round to round
            # NORMAL: the WAL is fsynced by hand, after the lock; checkpoints are the helper's job.
            configure_sqlite(self._engine, autocheckpoint=False, fsync_by_wal_sync=True)
        return self._engine


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)


_sequencers: dict[str, SqliteSequencer] = {}


def answer(request: list) -> bytes:
    """`["integrate", database_path, write_lock_path, log_seed, log_key_name, base_url,
    [database_identity, wal_identity]]`: one round, answered with a msgpack array: the
    checkpoints made and, by poll, why a log stopped."""
    kind, path, lock_path, seed, key_name, base_url, identities = request
    if kind != "integrate":
        raise ValueError(f"unknown request {kind!r}")
    if path not in _sequencers:
        _sequencers[path] = SqliteSequencer(path, lock_path)
    sequencer = _sequencers[path]
    made = sequencer.round(seed, key_name, base_url, identities) if seed else sequencer.open(identities)
    return msgspec.msgpack.encode([made, sequencer.broken])


class SequencerHelper:
    """Sends the SQLite sequencer's rounds to a helper process (`SqliteSequencer`),
    off the worker's event loop."""

    def __init__(self, files: SqliteFiles, write_lock_path: str, base_url: str) -> None:
        self.files = files
        self.write_lock_path = write_lock_path
        self.base_url = base_url
        self.process = HelperProcess("ballot log sequencer", __name__, timeout_s=ROUND_TIMEOUT_S)

    async def open(self) -> None:
        """Starts the helper and opens its connection, early: see `SqliteSequencer.open`."""
        await self.process.start()
        if (request := self._request(b"", "")) is not None:
            await self.process.submit(request, expected_bytes=None, parse=_round_answer, fallback=_nothing)

    async def round(self, signer: LogSigner, here: Callable[[], Awaitable[int]]) -> tuple[int, dict]:
        """One round in the helper: the checkpoints made and the polls whose log stopped there.
        Should the helper fail, `here` does the round in this process."""

        async def round_here() -> tuple[int, dict]:
            return await here(), {}

        def fallback(future: asyncio.Future[tuple[int, dict]]) -> None:
            asyncio.ensure_future(round_here()).add_done_callback(lambda done: copy_outcome(done, future))

        if (request := self._request(bytes(signer.active), signer.name)) is None:
            return 0, {}  # nothing committed yet, or the files are gone: nothing to integrate
        await self.process.start()  # else the first round, while it starts, would run here
        return await self.process.submit(request, expected_bytes=None, parse=_round_answer, fallback=fallback)

    def _request(self, seed: bytes, key_name: str) -> list | None:
        """A round's request (an empty seed: only open the connection)."""
        files = self.files
        files.remember()  # a new database's WAL appears at its first commit
        if files.database is None or files.wal is None:
            return None
        identities = [files.database, files.wal]
        return ["integrate", files.path, self.write_lock_path, seed, key_name, self.base_url, identities]

    async def close(self) -> None:
        await self.process.close()


def _nothing(future: asyncio.Future[tuple[int, dict]]) -> None:
    future.set_result((0, {}))


def _round_answer(answer: bytes) -> tuple[int, dict]:
    made, broken = msgspec.msgpack.decode(answer)
    return made, broken


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
        helper: SequencerHelper | None = None,
    ) -> None:
        self.db = db
        self.durability = durability
        self.commit = commit
        self.node_lock = NodeLock(node_lock)
        self.signer = signer
        self.origin_of = origin_of
        self.helper = helper
        self.task: asyncio.Task[None] | None = None
        self._one_round = asyncio.Lock()
        self.broken: dict[str, str] = {}  # poll → why its log stopped; /readyz could show it
        self.gaps = GapWatch()

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name="ballot-log-integrator")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None
        if self.helper is not None:
            await self.helper.close()
        self.node_lock.release()

    async def run_once(self) -> int:
        """Integrates every poll that is behind; how many checkpoints it made."""
        # The vote path's check that the database files are the ones it opened: once they are
        # not, nothing more is written here either (the votes get 503 and /readyz says why).
        if self.durability is not None and self.durability() is not None:
            return 0
        # One round at a time in this process, and one worker of the node does them all: another's
        # work would only be dropped, and its helper would rebuild the tree edges this one keeps.
        async with self._one_round:
            if not self.node_lock.hold():
                return 0
            if self.helper is None:
                return await self._integrate_all()
            made, broken = await self.helper.round(self.signer, self._integrate_all)
            self.broken.update(broken)
            return made

    async def _integrate_all(self) -> int:
        async with self.db.read() as conn:
            behind = await conn.run_sync(store.polls_behind)
        made = 0
        for poll_id in behind:
            if poll_id in self.broken:
                continue
            try:
                made += await self._integrate_poll(poll_id)
                if await void_gap(self.db, poll_id, self.gaps, commit=self.commit):
                    made += await self._integrate_poll(poll_id)
            except (LogIntegrityError, LookupError) as error:
                self.broken[poll_id] = str(error)
                log.error("ballot log stopped: %s", error)
        return made

    async def _integrate_poll(self, poll_id: str) -> int:
        made = 0
        while await integrate(self.db, poll_id, self.signer, self.origin_of(poll_id), commit=self.commit):
            made += 1
        return made

    async def _run(self) -> None:
        if self.helper is not None:
            try:
                await self.helper.open()
            except Exception:  # the rounds try again, and fall back to this process
                log.warning("ballot log sequencer helper did not open", exc_info=True)
        while True:
            try:
                await self.run_once()
            except Exception:  # the database away, for instance: try again next round
                log.warning("ballot log integration failed; retrying", exc_info=True)
            await asyncio.sleep(INTERVAL_S)


if __name__ == "__main__":
    serve(answer, sys.stdin.buffer, sys.stdout.buffer)
