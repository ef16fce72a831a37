"""Group commits fsync the WAL after COMMIT, outside the write lock: no receipt before that fsync."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import signal
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from app.core.settings import Settings
from app.storage.sqlite_files import SqliteFiles
from app.votes import wal_sync
from app.votes.commit_engine import CommitEngine
from tests.helpers import ADMIN_TOKEN, Voter, create_poll, send_vote
from tests.lifespan import serve

REAL_FDATASYNC = os.fdatasync


class HeldFsync:
    """Stands in for os.fdatasync: each call waits until the test releases it, then really syncs."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.entered = asyncio.Event()
        self.release = threading.Event()
        self.calls = 0
        self.error: OSError | None = None

    def __call__(self, fd: int) -> None:
        self.calls += 1
        self.loop.call_soon_threadsafe(self.entered.set)
        self.release.wait(10)
        if self.error is not None:
            raise self.error
        REAL_FDATASYNC(fd)


@pytest.fixture
async def sqlite_client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'votes.db'}", data_dir=tmp_path / "data", admin_token=ADMIN_TOKEN
    )
    async with serve(settings) as http:
        yield http


@pytest.fixture
async def held_fsync(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[HeldFsync]:
    """Holds every fsync done in this process: the fallback path, when the helper is not used."""
    held = HeldFsync(asyncio.get_running_loop())
    monkeypatch.setattr(os, "fdatasync", held)
    yield held
    held.release.set()


def stored_votes(client: httpx.AsyncClient) -> int:
    """Votes committed to the database file, read as another process would."""
    path = client.app.state.db.url.split("///", 1)[1]
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT count(*) FROM votes").fetchone()[0]


async def test_a_receipt_waits_for_the_fsync_that_follows_its_commit(sqlite_client):
    fsync_helper = sqlite_client.app.state.votes.committer.engine._wal_sync.process
    await fsync_helper.start()
    poll = await create_poll(sqlite_client, question="Durable?", options=["Yes", "No"])
    os.kill(fsync_helper.pid, signal.SIGSTOP)  # its fsync cannot finish
    try:
        answer = asyncio.create_task(send_vote(sqlite_client, Voter().vote(poll["id"], "yes")))
        await until(lambda: stored_votes(sqlite_client) == 1)
        # Committed (another connection sees it) and the lock released, but not known to be on
        # disk: no receipt. Nothing to await for an answer that must not come: give it time it
        # would not need (an in-process answer takes milliseconds), then look.
        await asyncio.wait([answer], timeout=0.5)
        assert not answer.done()
    finally:
        os.kill(fsync_helper.pid, signal.SIGCONT)
    assert (await answer).status_code == 201


async def test_a_failed_fsync_gives_no_receipt_now_or_later_and_the_worker_turns_unready(sqlite_client, held_fsync):
    sqlite_client.app.state.votes.committer.engine._wal_sync.process.enabled = False  # fsync here, where it is held
    poll = await create_poll(sqlite_client, question="Durable?", options=["Yes", "No"])
    vote = Voter().vote(poll["id"], "yes")
    held_fsync.error = OSError(errno.EIO, "I/O error")
    held_fsync.release.set()
    refused = await send_vote(sqlite_client, vote)
    assert refused.status_code == 503
    assert refused.headers["content-type"].startswith("application/problem+json")
    # The kernel may have dropped the pages it failed to write: a later fsync that works proves
    # nothing about them, so this worker gives no receipt at all until it is restarted.
    held_fsync.error = None
    assert (await send_vote(sqlite_client, vote)).status_code == 503
    assert (await send_vote(sqlite_client, Voter().vote(poll["id"], "no"))).status_code == 503
    unready = await sqlite_client.get("/readyz")
    assert unready.status_code == 503
    assert "fsync failed" in unready.json()["detail"]


async def test_after_a_failed_fsync_a_batched_vote_gets_the_single_endpoints_answer(sqlite_client, held_fsync):
    sqlite_client.app.state.votes.committer.engine._wal_sync.process.enabled = False  # fsync here, where it is held
    poll = await create_poll(sqlite_client, question="Durable?", options=["Yes", "No"])
    held_fsync.error = OSError(errno.EIO, "I/O error")
    held_fsync.release.set()
    single = await send_vote(sqlite_client, Voter().vote(poll["id"], "yes"))
    batched = await sqlite_client.post("/api/v1/votes/batch", json={"votes": [Voter().vote(poll["id"], "no")]})
    item = batched.json()["results"][0]
    assert single.status_code == item["status"] == 503
    assert item["problem"] == single.json()


async def test_the_helpers_fsync_error_reaches_the_commit_and_stays(tmp_path):
    (tmp_path / "votes.db").touch()
    (tmp_path / "votes.db-wal").symlink_to("/dev/null")  # a file that cannot be fsynced: EINVAL
    files = SqliteFiles(str(tmp_path / "votes.db"))
    files.remember()
    sync = wal_sync.WalSync(files)
    await sync.process.start()
    try:
        invalid = os.strerror(errno.EINVAL)
        with pytest.raises(OSError, match=invalid) as failed:
            await sync.after_commit()
        assert failed.value.errno == errno.EINVAL
        with pytest.raises(OSError, match=invalid):
            await sync.after_commit()
        assert sync.process.pid is not None  # the helper answered; it did not fail
    finally:
        await sync.close()


async def test_one_fsync_covers_every_commit_that_finished_before_it(tmp_path, held_fsync):
    (tmp_path / "votes.db").touch()
    (tmp_path / "votes.db-wal").write_bytes(b"frames")
    sync = wal_sync.WalSync(SqliteFiles(str(tmp_path / "votes.db")), use_helper=False)
    try:
        first = sync.after_commit()
        await held_fsync.entered.wait()
        later = [sync.after_commit() for _ in range(5)]  # commits while the first fsync runs
        assert len({id(f) for f in later}) == 1  # they share the next fsync
        held_fsync.release.set()
        await asyncio.gather(first, *later)
        assert held_fsync.calls == 2
    finally:
        await sync.close()


async def test_votes_that_arrive_while_another_worker_commits_join_one_batch(sqlite_client):
    poll = await create_poll(sqlite_client, question="Batched?", options=["Yes", "No"])
    committer = sqlite_client.app.state.votes.committer
    engine = committer.engine
    commits_before = engine.commits
    with other_worker_holding_the_write_lock(engine) as release:
        first = [asyncio.create_task(send_vote(sqlite_client, Voter().vote(poll["id"], "yes"))) for _ in range(5)]
        await until(engine._write_lock.locked)  # the committer is in its commit, waiting for the file lock
        later = [asyncio.create_task(send_vote(sqlite_client, Voter().vote(poll["id"], "no"))) for _ in range(5)]
        await until(lambda: len(committer._pending) == 10 and all(p.check.done() for p in committer._pending))
        release()
        async with asyncio.timeout(30):  # a vote left unanswered fails here, not at the suite's timeout
            answers = await asyncio.gather(*first, *later)
    assert [a.status_code for a in answers] == [201] * 10
    assert engine.commits - commits_before == 1


@contextmanager
def other_worker_holding_the_write_lock(engine: CommitEngine) -> Iterator[Callable[[], None]]:
    """Holds the workers' write lock, as another worker's commit would; yields its release."""
    fd = os.open(engine._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    released = False

    def release() -> None:
        nonlocal released
        if not released:
            os.close(fd)  # closing the descriptor releases the lock
            released = True

    try:
        yield release
    finally:
        release()


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 (internal state, no event to await)
            await asyncio.sleep(0.005)
