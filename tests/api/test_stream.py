"""`GET /api/v1/polls/{poll_id}/stream` against a real `python -m app` process (httpx's ASGI
transport buffers whole responses, so streams need a real server), and its errors in-process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from app.live.fanout import LiveResults
from tests.helpers import Voter, send_vote
from tests.service_process import ServiceProcess
from tests.sse import counts, open_stream

HEARTBEAT_S = 0.3


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """One real service (SQLite) for this module's streams, with quick heartbeats; each test makes its own poll."""
    process = ServiceProcess(
        tmp_path_factory.mktemp("stream") / "service", env={"VOTE_LIVE_HEARTBEAT_SECONDS": str(HEARTBEAT_S)}
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
async def http(service: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=service.base_url, timeout=10) as client:
        yield client


@pytest.fixture
async def remote_poll(http: httpx.AsyncClient, service: ServiceProcess) -> dict[str, Any]:
    response = await http.post(
        "/api/v1/polls",
        json={"question": "Tea?", "options": ["Yes", "No"], "eligibility": "anyone"},
        headers=service.admin_headers(),
    )
    assert response.status_code == 201, response.text
    return response.json()


async def vote(http: httpx.AsyncClient, poll_id: str, option_id: str) -> None:
    assert (await send_vote(http, Voter().vote(poll_id, option_id))).status_code == 201


async def test_stream_sends_the_counts_on_connect_then_each_change(http, remote_poll):
    poll_id = remote_poll["id"]
    await vote(http, poll_id, "no")
    async with open_stream(http, poll_id) as stream:
        assert stream.response.headers["content-type"].startswith("text/event-stream")
        assert stream.response.headers["cache-control"] == "no-store"
        first = await stream.next_event()
        assert first.retry == 3000  # EventSource's reconnect delay comes first

        snapshot = await stream.next_results()
        assert snapshot.id == "1"
        assert snapshot.json() == {
            "poll_id": poll_id,
            "total": 1,
            "options": [{"id": "yes", "label": "Yes", "votes": 0}, {"id": "no", "label": "No", "votes": 1}],
        }

        await vote(http, poll_id, "yes")
        update = (await stream.results_until(2))[-1]
        assert update.id == "2"
        assert counts(update.json()) == {"yes": 1, "no": 1}


async def test_reconnect_with_last_event_id_gets_the_votes_cast_meanwhile(http, remote_poll):
    poll_id = remote_poll["id"]
    async with open_stream(http, poll_id) as stream:
        last_id = (await stream.next_results()).id
    for option in ("yes", "yes", "no"):
        await vote(http, poll_id, option)

    async with open_stream(http, poll_id, last_event_id=last_id) as resumed:
        events = await resumed.results_until(3)
    # Nothing the client had is sent again; the last event holds every vote cast meanwhile.
    assert all(int(e.id) > int(last_id) for e in events)  # type: ignore[arg-type]
    assert events[-1].id == "3"
    assert counts(events[-1].json()) == {"yes": 2, "no": 1}


async def test_reconnect_with_the_current_id_gets_no_repeat_of_the_counts(http, remote_poll):
    poll_id = remote_poll["id"]
    await vote(http, poll_id, "yes")
    async with open_stream(http, poll_id, last_event_id="1") as stream:
        await vote(http, poll_id, "no")
        first = await stream.next_results()
    assert first.id == "2"  # the counts it had (id 1) were not sent again
    assert counts(first.json()) == {"yes": 1, "no": 1}


async def test_garbage_last_event_id_gets_the_current_counts(http, remote_poll):
    async with open_stream(http, remote_poll["id"], last_event_id="not-a-number") as stream:
        assert (await stream.next_results()).id == "0"


async def test_idle_stream_sends_heartbeat_comments(http, remote_poll):
    async with open_stream(http, remote_poll["id"]) as stream:
        await stream.next_results()
        heartbeats = [await stream.next_event() for _ in range(2)]
    assert [event.comments for event in heartbeats] == [["keep-alive"], ["keep-alive"]]
    assert all(event.event is None and not event.data for event in heartbeats)


async def test_every_stream_of_a_poll_gets_each_change(http, remote_poll):
    poll_id = remote_poll["id"]
    async with open_stream(http, poll_id) as one, open_stream(http, poll_id) as two:
        await one.next_results()
        await two.next_results()
        await vote(http, poll_id, "no")
        assert [(await s.next_results()).id for s in (one, two)] == ["1", "1"]


async def test_stream_of_unknown_poll_is_a_404_problem(client):
    response = await client.get("/api/v1/polls/no-such-poll/stream")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/problems/poll-not-found"


async def test_stream_with_malformed_poll_id_is_a_400_problem(client):
    response = await client.get("/api/v1/polls/not%20an%20id/stream")
    assert response.status_code == 400
    assert response.json()["type"] == "/problems/invalid-request"


async def test_client_that_hangs_up_leaves_no_watcher_behind(client, poll):
    """Driven as raw ASGI in-process, so the test can see the worker's side after the hang-up."""
    app = client.app  # type: ignore[attr-defined]
    live: LiveResults = app.state.live
    path = f"/api/v1/polls/{poll['id']}/stream"
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "http.request", "body": b"", "more_body": False})
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 5000), "server": ("testserver", 80),
    }  # fmt: skip
    request = asyncio.create_task(app(scope, inbox.get, outbox.put))
    body = b""
    while b"event: results" not in body:
        message = await asyncio.wait_for(outbox.get(), 15)
        body += message.get("body", b"")
    assert live.watching(poll["id"]) == 1

    await inbox.put({"type": "http.disconnect"})
    await asyncio.wait_for(request, 15)
    assert live.watching(poll["id"]) == 0
