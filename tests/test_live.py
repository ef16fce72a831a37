"""The live-results hub in a running app (in-process): one read per snapshot however many watch,
coalescing, and watchers that skip to the newest counts instead of queueing."""

from __future__ import annotations

import asyncio
import json

from app.live.fanout import UPDATE_INTERVAL_S, LiveResults, Watcher
from tests.helpers import Voter, database_reads, send_vote


async def next_with_total(watcher: Watcher, total: int) -> list[int]:
    """Takes snapshots until one has `total` votes; returns the totals seen on the way."""
    seen: list[int] = []
    while not seen or seen[-1] < total:
        snapshot = await asyncio.wait_for(watcher.next(), 15)  # a bound, not a timing check
        assert snapshot is not None
        seen.append(snapshot.total)
    return seen


async def test_many_watchers_of_a_poll_cost_one_read_per_snapshot(client, poll):
    live: LiveResults = client.app.state.live
    with database_reads(client.app.state.db, "option_tallies") as reads:
        snapshots = await asyncio.gather(*(live.snapshot(poll["id"]) for _ in range(20)))
        watchers = [live.join(poll["id"]) for _ in range(20)]
        assert len(reads) == 1
        assert {s.total for s in snapshots if s is not None} == {0}

        assert (await send_vote(client, Voter().vote(poll["id"], "yes"))).status_code == 201
        for watcher in watchers:
            await next_with_total(watcher, 1)
        assert len(reads) == 2  # the publisher's one read, shared by all twenty
    for watcher in watchers:
        live.leave(poll["id"], watcher)
    assert live.watching(poll["id"]) == 0


async def test_burst_of_votes_reaches_a_watcher_as_a_few_snapshots_a_second(client, poll):
    live: LiveResults = client.app.state.live
    await live.snapshot(poll["id"])
    watcher = live.join(poll["id"])
    assert (await watcher.next()).total == 0  # type: ignore[union-attr]
    votes = [Voter().vote(poll["id"], "yes" if i % 3 else "no") for i in range(40)]
    loop = asyncio.get_running_loop()
    start = loop.time()

    answers = await asyncio.gather(*(send_vote(client, vote) for vote in votes))
    totals = await next_with_total(watcher, len(votes))

    elapsed = loop.time() - start
    assert [a.status_code for a in answers] == [201] * len(votes)
    assert totals == sorted(set(totals))  # each snapshot newer than the last
    assert len(totals) <= 2 + elapsed / UPDATE_INTERVAL_S  # coalesced, whatever the machine's speed
    latest = await live.snapshot(poll["id"])
    assert latest is not None
    assert json.loads(latest.data) == (await client.get(f"/api/v1/polls/{poll['id']}/results")).json()
    live.leave(poll["id"], watcher)


async def test_slow_watcher_skips_to_the_newest_counts_and_holds_back_no_one(client, poll):
    live: LiveResults = client.app.state.live
    await live.snapshot(poll["id"])
    fast, slow = live.join(poll["id"]), live.join(poll["id"])
    await next_with_total(fast, 0)

    for total in range(1, 6):
        assert (await send_vote(client, Voter().vote(poll["id"], "yes"))).status_code == 201
        await next_with_total(fast, total)  # served while `slow` has read nothing

    newest = await slow.next()
    assert newest is not None
    assert newest.total == 5  # not 0, 1, 2…: its backlog is one snapshot, the newest
    assert json.loads(newest.data)["options"][0] == {"id": "yes", "label": "Yes", "votes": 5}
    live.leave(poll["id"], fast)
    live.leave(poll["id"], slow)


async def test_snapshot_of_unknown_poll_is_none(client):
    live: LiveResults = client.app.state.live
    assert await live.snapshot("no-such-poll") is None
