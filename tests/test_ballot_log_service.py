"""The ballot log as the service keeps and serves it: every accepted vote an entry at seq - 1,
signed checkpoints that only ever extend, tiles as C2SP tlog-tiles lays them out."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import time

import pytest
from sqlalchemy import update

from app.ballot_log import merkle, store
from app.ballot_log.checkpoint import open_checkpoint
from app.ballot_log.entries import decode_entry, unbundle
from app.ballot_log.integrator import Integrator, LogIntegrityError, integrate
from app.ballot_log.log_keys import origin_for
from app.ballot_log.note import Verifier
from app.ballot_log.tiles import TileId, split_hashes
from app.storage.db import Database
from app.storage.schema import ballot_log_checkpoints, ballot_log_tiles
from tests.helpers import Voter, b64decode, send_vote

WAIT_S = 10  # a generous bound to wait for a condition; the integrator's own target is 1 s


async def cast(client, poll_id: str, count: int, option: str = "yes") -> list[dict]:
    votes = []
    for _ in range(count):
        vote = Voter().vote(poll_id, option)
        response = await send_vote(client, vote)
        assert response.status_code == 201, response.text
        votes.append(vote)
    return votes


async def verifiers(client) -> list[Verifier]:
    keys = (await client.get("/api/v1/keys")).json()
    assert keys["log"]["vkey"] in keys["log"]["vkeys"]
    return [Verifier.parse(v) for v in keys["log"]["vkeys"]]


async def checkpoint_of(client, poll_id: str):
    response = await client.get(f"/api/v1/polls/{poll_id}/log/checkpoint")
    assert response.status_code == 200
    return open_checkpoint(response.content, await verifiers(client))


async def wait_for_size(client, poll_id: str, size: int):
    deadline = time.monotonic() + WAIT_S
    while True:
        checkpoint = await checkpoint_of(client, poll_id)
        if checkpoint.size >= size or time.monotonic() > deadline:
            return checkpoint
        await asyncio.sleep(0.05)


async def test_every_receipted_vote_is_an_entry_at_seq_minus_one(client, poll, settings):
    votes = await cast(client, poll["id"], 3)
    checkpoint = await wait_for_size(client, poll["id"], 3)
    assert (checkpoint.size, checkpoint.origin) == (3, origin_for(settings.base_url, poll["id"]))
    bundle = await client.get(f"/api/v1/polls/{poll['id']}/log/tile/entries/000.p/3")
    assert bundle.status_code == 200
    assert bundle.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert bundle.headers["content-type"] == "application/octet-stream"
    entries = unbundle(bundle.content, 3)
    for vote in votes:
        receipt = (await send_vote(client, vote)).json()  # a retry: the same receipt
        seq = json.loads(b64decode(receipt["payload"]))["seq"]
        entry = decode_entry(entries[seq - 1])
        assert {k: getattr(entry, k) for k in entry.__struct_fields__} == {k: vote[k] for k in entry.__struct_fields__}
        assert entry.signature_verifies()
    tile = await client.get(f"/api/v1/polls/{poll['id']}/log/tile/0/000.p/3")
    assert split_hashes(tile.content) == [merkle.leaf_hash(e) for e in entries]
    assert merkle.root_of(split_hashes(tile.content)) == checkpoint.root


async def test_the_checkpoint_is_cached_for_seconds_and_tiles_for_good(client, poll):
    await cast(client, poll["id"], 1)
    await wait_for_size(client, poll["id"], 1)
    response = await client.get(f"/api/v1/polls/{poll['id']}/log/checkpoint")
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    max_age = int(response.headers["cache-control"].split("max-age=")[1].split(",")[0])
    assert 0 < max_age <= 5
    head = await client.head(f"/api/v1/polls/{poll['id']}/log/tile/0/000.p/1")
    assert (head.status_code, head.content) == (200, b"")


async def test_a_poll_without_votes_has_the_empty_log(client, poll):
    checkpoint = await checkpoint_of(client, poll["id"])
    assert (checkpoint.size, checkpoint.root) == (0, merkle.EMPTY_ROOT)


@pytest.mark.parametrize(
    "path",
    ["tile/0/000", "tile/0/000.p/5", "tile/entries/000.p/2", "tile/0/5", "tile/0/000.p/0", "tile/x/000", "nothing"],
)
async def test_tiles_it_does_not_have_are_problems_not_errors(client, poll, path):
    await cast(client, poll["id"], 1)
    await wait_for_size(client, poll["id"], 1)
    response = await client.get(f"/api/v1/polls/{poll['id']}/log/{path}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_an_unknown_poll_has_no_log(client):
    for path in ("checkpoint", "tile/0/000.p/1"):
        response = await client.get(f"/api/v1/polls/no-such-poll/log/{path}")
        assert response.status_code == 404
        assert response.json()["type"] == "/problems/poll-not-found"


async def test_each_checkpoint_extends_the_one_before(client, poll):
    """Integrated in steps of every size: consistency proofs from each checkpoint to the next."""
    db: Database = client.app.state.db
    integrator = client.app.state.log_integrator
    await integrator.stop()  # integrated by hand here, one step at a time
    seen = []
    for step in (1, 1, 2, 3, 250, 7):
        await cast(client, poll["id"], step) if step < 10 else await _cast_many(client, poll["id"], step)
        made = await integrate(db, poll["id"], integrator.signer, integrator.origin_of(poll["id"]))
        assert made is not None
        seen.append(open_checkpoint(made.note, integrator.signer.verifiers()))
    hashes = await _leaf_hashes(client, poll["id"], seen[-1].size)
    for earlier, later in itertools.pairwise(seen):
        proof = merkle.consistency_proof(earlier.size, hashes[: later.size])
        merkle.verify_consistency(earlier.size, later.size, proof, earlier.root, later.root)
    assert [c.size for c in seen] == [1, 2, 4, 7, 257, 264]
    full = await client.get(f"/api/v1/polls/{poll['id']}/log/tile/0/000")
    assert len(full.content) == 8192
    level1 = await client.get(f"/api/v1/polls/{poll['id']}/log/tile/1/000.p/1")
    assert level1.content == merkle.root_of(split_hashes(full.content))


async def test_tiles_that_do_not_match_the_checkpoint_stop_the_log(client, poll):
    db: Database = client.app.state.db
    integrator = client.app.state.log_integrator
    await integrator.stop()
    await cast(client, poll["id"], 2)
    await integrator.run_once()
    async with db.write() as conn:
        await conn.execute(update(ballot_log_tiles).values(hashes=b"\x00" * 64))
    await cast(client, poll["id"], 1)
    with pytest.raises(LogIntegrityError, match="do not match its last checkpoint"):
        await integrate(db, poll["id"], integrator.signer, integrator.origin_of(poll["id"]))
    await integrator.run_once()
    assert "do not match" in integrator.broken[poll["id"]]
    assert (await checkpoint_of(client, poll["id"])).size == 2  # the published log stays as it was


async def test_log_keys_rotate_and_old_ones_stay_listed(client, settings):
    from app.ballot_log.log_keys import LogSigner, rotate

    before = (await client.get("/api/v1/keys")).json()["log"]
    rotate(settings.data_dir)
    after = LogSigner.load(settings.data_dir, settings.base_url)
    assert after.vkey != before["vkey"]
    assert before["vkey"] in [v.vkey for v in after.verifiers()]
    assert (settings.data_dir / "log-keys").stat().st_mode & 0o077 == 0


async def _cast_many(client, poll_id: str, count: int) -> None:
    votes = [Voter().vote(poll_id, "no") for _ in range(count)]
    for start in range(0, count, 100):
        response = await client.post("/api/v1/votes/batch", json={"votes": votes[start : start + 100]})
        assert all(r["status"] == 201 for r in response.json()["results"])


async def _leaf_hashes(client, poll_id: str, size: int) -> list[bytes]:
    hashes = []
    for index in range(0, size, 256):
        width = min(256, size - index)
        tile = TileId("entries", index // 256, width)
        response = await client.get(f"/api/v1/polls/{poll_id}/log/{tile.path}")
        hashes += [merkle.leaf_hash(e) for e in unbundle(response.content, width)]
    return hashes


async def test_sequencers_on_many_workers_make_one_history(client, poll, database_url):
    """Workers and nodes each run a sequencer: the lock lets one extend a poll's log at a time,
    and the others find nothing left to do, or extend what it made; never a second history."""
    integrator = client.app.state.log_integrator
    await integrator.stop()
    handles = [Database(database_url) for _ in range(4)]
    try:
        for _round in range(3):
            await _cast_many(client, poll["id"], 40)
            made = await asyncio.gather(
                *(integrate(db, poll["id"], integrator.signer, integrator.origin_of(poll["id"])) for db in handles)
            )
            assert sum(m is not None for m in made) >= 1
        final = await checkpoint_of(client, poll["id"])
        assert final.size == 120
        hashes = await _leaf_hashes(client, poll["id"], 120)
        assert merkle.root_of(hashes) == final.root
        tile = await client.get(f"/api/v1/polls/{poll['id']}/log/tile/0/000.p/120")
        assert split_hashes(tile.content) == hashes
    finally:
        for db in handles:
            await db.dispose()


async def test_a_sequencer_that_was_overtaken_drops_its_work(client, poll):
    """Work is done outside the write; if another sequencer extended the log meanwhile, the stale
    checkpoint is not written over the newer one (the log never shrinks or forks)."""
    from app.ballot_log.integrator import _plain_commit

    db: Database = client.app.state.db
    integrator = client.app.state.log_integrator
    await integrator.stop()
    origin = integrator.origin_of(poll["id"])
    await cast(client, poll["id"], 2)

    async def overtaken(work):
        await cast(client, poll["id"], 3)
        assert (await integrate(db, poll["id"], integrator.signer, origin)).size == 5
        return await _plain_commit(db)(work)

    assert await integrate(db, poll["id"], integrator.signer, origin, commit=overtaken) is None
    checkpoint = await checkpoint_of(client, poll["id"])
    assert checkpoint.size == 5
    assert merkle.root_of(await _leaf_hashes(client, poll["id"], 5)) == checkpoint.root


async def test_on_sqlite_the_sequencer_runs_in_a_helper_process(client, poll, monkeypatch):
    """Off the worker's event loop: were the round done in this process, it would fail here."""
    integrator = client.app.state.log_integrator
    if integrator.helper is None:
        pytest.skip("PostgreSQL: the sequencer runs in the worker, under an advisory lock")
    await integrator.stop()  # the background rounds would race the one below
    await cast(client, poll["id"], 3)

    async def not_here(*_args, **_kwargs):
        raise AssertionError("the round ran on the worker's event loop")

    monkeypatch.setattr(integrator, "_integrate_all", not_here)
    assert await integrator.run_once() == 1
    assert integrator.helper.process.pid not in (None, os.getpid())
    assert (await checkpoint_of(client, poll["id"])).size == 3


async def test_a_sequencer_helper_killed_mid_load_is_replaced_and_nothing_is_lost(client, poll):
    integrator = client.app.state.log_integrator
    if integrator.helper is None:
        pytest.skip("PostgreSQL: the sequencer runs in the worker, under an advisory lock")
    await integrator.stop()
    await cast(client, poll["id"], 2)
    await integrator.run_once()
    os.kill(integrator.helper.process.pid, signal.SIGKILL)
    await cast(client, poll["id"], 3)
    # A new helper does the next round (or this process, should it fail to start).
    assert await integrator.run_once() == 1
    assert (await checkpoint_of(client, poll["id"])).size == 5
    await cast(client, poll["id"], 1)
    assert await integrator.run_once() == 1
    assert (await checkpoint_of(client, poll["id"])).size == 6


async def _helper_integrator(client):
    integrator = client.app.state.log_integrator
    if integrator.helper is None:
        pytest.skip("PostgreSQL: the sequencer runs in the worker, under an advisory lock")
    await integrator.stop()  # the background rounds would race the ones below

    async def not_here(*_args, **_kwargs):
        raise AssertionError("the round ran on the worker's event loop, not in the helper")

    integrator._integrate_all = not_here
    return integrator


async def test_the_helper_reloads_its_tree_edge_when_another_sequencer_extended_the_log(client, poll):
    """The helper keeps the tree's edge between rounds; once the stored checkpoint is not the one
    it kept the edge for, it reads the tiles again and extends what is stored."""
    integrator = await _helper_integrator(client)
    origin = integrator.origin_of(poll["id"])
    await cast(client, poll["id"], 2)
    assert await integrator.run_once() == 1  # the helper keeps the edge of size 2
    await cast(client, poll["id"], 3)
    other = Database(client.app.state.db.url)
    try:
        assert (await integrate(other, poll["id"], integrator.signer, origin)).size == 5
    finally:
        await other.dispose()
    await cast(client, poll["id"], 1)
    assert await integrator.run_once() == 1
    checkpoint = await checkpoint_of(client, poll["id"])
    assert checkpoint.size == 6
    assert merkle.root_of(await _leaf_hashes(client, poll["id"], 6)) == checkpoint.root


async def test_the_helper_refuses_to_extend_a_checkpoint_its_tiles_do_not_match(client, poll):
    """A checkpoint of the same size but another root behind the helper's back: its kept edge
    is not that tree's, and the stored tiles do not match it either, so the log stops."""
    integrator = await _helper_integrator(client)
    await cast(client, poll["id"], 2)
    assert await integrator.run_once() == 1
    async with client.app.state.db.write() as conn:
        await conn.execute(update(ballot_log_checkpoints).values(root=b"\x01" * 32))
    await cast(client, poll["id"], 1)
    assert await integrator.run_once() == 0
    assert "do not match its last checkpoint" in integrator.broken[poll["id"]]
    async with client.app.state.db.read() as conn:
        assert (await store.load_checkpoint(conn, poll["id"])).size == 2  # nothing written over it


async def test_the_helper_extends_its_kept_tree_edge_as_a_rebuilt_one_would(client, poll):
    """Round after round from the edge it kept: every checkpoint the root of all the entries so
    far, and consistent with the one before, across a full tile."""
    integrator = await _helper_integrator(client)
    seen = []
    for step in (3, 250, 4, 1):
        await cast(client, poll["id"], step) if step < 10 else await _cast_many(client, poll["id"], step)
        assert await integrator.run_once() == 1
        seen.append(await checkpoint_of(client, poll["id"]))
    hashes = await _leaf_hashes(client, poll["id"], seen[-1].size)
    assert [c.size for c in seen] == [3, 253, 257, 258]
    assert merkle.root_of(hashes) == seen[-1].root
    for earlier, later in itertools.pairwise(seen):
        proof = merkle.consistency_proof(earlier.size, hashes[: later.size])
        merkle.verify_consistency(earlier.size, later.size, proof, earlier.root, later.root)


async def test_one_worker_of_a_node_does_every_round_until_it_stops(client, poll):
    """Workers of one node share the node's sequencer lock; the first to take it keeps it between
    rounds (its helper keeps the tree edges), and another takes over once it stops."""
    first = client.app.state.log_integrator
    if first.node_lock.path is None:
        pytest.skip("PostgreSQL: one sequencer per poll through an advisory lock, no node lock")
    assert await first.run_once() == 0  # holds the lock from now on (nothing to do yet)
    first.task.cancel()  # no more rounds from it, but it has not stopped: it keeps the lock
    second = Integrator(client.app.state.db, first.signer, first.origin_of, node_lock=first.node_lock.path)
    try:
        await cast(client, poll["id"], 2)
        assert await second.run_once() == 0
        await first.stop()
        assert await second.run_once() == 1
        assert (await checkpoint_of(client, poll["id"])).size == 2
    finally:
        await second.stop()
