"""`GET /api/v1/polls/{poll_id}/stream`: live results as Server-Sent Events.

The wire contract (event names, ids, heartbeats, resuming) is in docs/live-results.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

from litestar import Request
from litestar.params import HeaderParameter
from litestar.response import Stream

from app.core import problems
from app.edge.deps import DatabaseDep, LiveResultsDep
from app.edge.errors import problem_specs
from app.edge.http import PollId, get_or_head
from app.edge.polls import results_reader
from app.live.fanout import LiveResults, LiveUnavailable, Snapshot

RETRY_MS = 3000  # how long EventSource waits before it reconnects after the stream ends
EVENT_NAME = b"results"
HEARTBEAT = b": keep-alive\n\n"  # a comment line: EventSource ignores it, proxies see traffic
STREAM_HEADERS = {
    # Never cached or buffered: each response is a live feed. nginx honours X-Accel-Buffering.
    "Cache-Control": "no-store",
    "X-Accel-Buffering": "no",
}


def encode_event(snapshot: Snapshot) -> bytes:
    # The results JSON is one line (msgspec writes no newlines), so one `data:` line holds it.
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (snapshot.total, EVENT_NAME, snapshot.data)


def last_seen_total(last_event_id: str | None) -> int:
    """The total the client already shows, from Last-Event-ID; -1 when it shows nothing usable."""
    if last_event_id is None:
        return -1
    value = last_event_id.strip()
    return int(value) if value.isdigit() and len(value) <= 18 else -1


async def results_events(live: LiveResults, poll_id: str, seen_total: int) -> AsyncIterator[bytes]:
    # Joined here, not in the handler: a client that leaves before the body starts never runs
    # this generator, and a watcher registered outside it would never be removed.
    watcher = live.join(poll_id)
    try:
        yield b"retry: %d\n\n" % RETRY_MS
        while True:
            try:
                async with asyncio.timeout(live.heartbeat_s):
                    snapshot = await watcher.next()
            except TimeoutError:
                yield HEARTBEAT
                continue
            if snapshot is None:
                return  # the feed ended (shutdown, lost backend): EventSource reconnects
            if snapshot.total > seen_total:  # never older than what the client has, never twice
                seen_total = snapshot.total
                yield encode_event(snapshot)
    finally:
        live.leave(poll_id, watcher)


@get_or_head(
    "/api/v1/polls/{poll_id:str}/stream",
    operation_id="streamResults",
    summary="Live results as Server-Sent Events",
    description="A `results` event with the counts on connect (unless Last-Event-ID shows the client has them), "
    "then on change, at most a few a second; comment heartbeats when idle. See docs/live-results.md.",
    tags=["polls"],
    # RateLimited: past VOTE_STREAMS_PER_CLIENT streams from one client (app/edge/limits.py).
    # ResultsHidden: the poll's results visibility withholds them from this reader (docs/organisers.md).
    responses=problem_specs(
        problems.InvalidRequest,
        problems.PollNotFound,
        problems.ResultsHidden,
        problems.RateLimited,
        problems.ServiceUnavailable,
    ),
)
async def stream_results(
    request: Request[Any, Any, Any],
    db: DatabaseDep,
    live: LiveResultsDep,
    poll_id: PollId,
    last_event_id: Annotated[
        str | None,
        HeaderParameter(name="Last-Event-ID", required=False, description="Sent by EventSource on reconnect."),
    ] = None,
) -> Stream:
    await results_reader(request, db, poll_id)
    try:
        snapshot = await live.snapshot(poll_id)
    except LiveUnavailable:
        raise problems.ServiceUnavailable("Live results are unavailable.", headers={"Retry-After": "3"}) from None
    if snapshot is None:
        raise problems.PollNotFound.named(poll_id)
    return Stream(
        results_events(live, poll_id, last_seen_total(last_event_id)),
        media_type="text/event-stream",
        headers=STREAM_HEADERS,
    )
