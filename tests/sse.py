"""A small Server-Sent Events reader over httpx, as EventSource parses the stream (WHATWG HTML §9.2)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

READ_DEADLINE_S = 15.0  # a bound so that a broken stream fails the test instead of hanging it


@dataclass
class Event:
    event: str | None = None
    id: str | None = None
    data: list[str] = field(default_factory=list)
    retry: int | None = None
    comments: list[str] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads("\n".join(self.data))


class EventStream:
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    @property
    def client_port(self) -> int:
        """The local port of this stream's connection, which names it on the server side too."""
        return self.response.extensions["network_stream"].get_extra_info("client_addr")[1]

    async def next_event(self) -> Event:
        """The next block: an event, a `retry:` line or heartbeat comments."""
        event = Event()
        async with asyncio.timeout(READ_DEADLINE_S):
            async for line in self._lines:
                if line == "":
                    if event != Event():
                        return event
                    continue
                if line.startswith(":"):
                    event.comments.append(line[1:].strip())
                    continue
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "data":
                    event.data.append(value)
                elif name == "retry":
                    event.retry = int(value)
                elif name in ("event", "id"):
                    setattr(event, name, value)
        raise EOFError("the stream ended")

    async def next_results(self) -> Event:
        """The next `results` event, skipping heartbeats and `retry:`."""
        async with asyncio.timeout(READ_DEADLINE_S):
            while True:
                event = await self.next_event()
                if event.event == "results":
                    return event

    async def results_until(self, total: int) -> list[Event]:
        """`results` events up to the one with `total` votes: coalescing may deliver a few on the way."""
        events = [await self.next_results()]
        while events[-1].json()["total"] < total:
            events.append(await self.next_results())
        return events


@asynccontextmanager
async def open_stream(
    http: httpx.AsyncClient, poll_id: str, *, last_event_id: str | None = None
) -> AsyncIterator[EventStream]:
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    async with http.stream("GET", f"/api/v1/polls/{poll_id}/stream", headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        yield EventStream(response)


def counts(results: dict[str, Any]) -> dict[str, int]:
    return {option["id"]: option["votes"] for option in results["options"]}
