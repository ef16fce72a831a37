"""Limits at the HTTP edge: how long a request may take to arrive, how large its head may be, how
many connections a worker serves, how many results streams one client holds open.

Two of these cannot be an ASGI middleware, which only ever sees a request whose head is complete:
a head that trickles in or grows without end must be stopped while uvicorn is still reading it.
uvicorn's httptools protocol has no timeout until the head is complete and no size cap (see
uvicorn issue #157), and its `limit_concurrency` answers 503 without `Retry-After`; so
`BoundedHttpProtocol` adds those three, and refuses protocol upgrades (the service speaks no
WebSocket) before uvicorn would log the client's address. `StreamsPerClient` caps results
streams per client; the client's address is only ever held as a keyed hash, in memory.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections import Counter
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from app.core import problems
from app.core.settings import Settings
from app.edge.security import SECURITY_HEADERS

MAX_HEADER_BYTES = 16 * 1024  # nginx's default allows 4 lines of 8 KiB; the service's own need ~1 KiB
STREAM_PATH_PREFIX = "/api/v1/polls/"
STREAM_PATH_SUFFIX = "/stream"
RETRY_AFTER_S = 5


class RequestTimeout(problems.Problem):
    status = 408
    slug = "request-timeout"
    title = "The request did not arrive in time"


class HeadersTooLarge(problems.Problem):
    status = 431
    slug = "headers-too-large"
    title = "The request's headers are too large"


class UpgradeRefused(problems.Problem):
    slug = "upgrade-refused"
    title = "The service speaks plain HTTP/1.1 only; protocol upgrades (WebSocket, h2c) are refused"


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    header_timeout_s: float
    """From the connection's start, or the end of its previous response, to a complete head."""
    body_timeout_s: float
    """From a complete head to a complete body."""
    max_header_bytes: int
    """Request line and headers together."""
    max_connections: int
    """Open connections per worker; a request on one past this gets 503 with Retry-After."""


def problem_response(problem: problems.Problem, headers: dict[str, str] | None = None) -> bytes:
    """A complete HTTP/1.1 response that ends the connection, for answers given outside the app."""
    body = msgspec.json.encode(problem.details())
    head = [STATUS_LINE[problem.status]]
    fields = {
        "content-type": problems.PROBLEM_MEDIA_TYPE,
        "content-length": str(len(body)),
        "connection": "close",
        **SECURITY_HEADERS,  # as on every answer the app gives
        **(headers or {}),
    }
    head.extend(f"{name}: {value}\r\n".encode("latin-1") for name, value in fields.items())
    return b"".join(head) + b"\r\n" + body


def http_protocol(settings: Settings) -> functools.partial[BoundedHttpProtocol]:
    """uvicorn's `http` option: picklable, so that spawned workers get it with the limits."""
    limits = EdgeLimits(
        header_timeout_s=settings.header_timeout_seconds,
        body_timeout_s=settings.body_timeout_seconds,
        max_header_bytes=MAX_HEADER_BYTES,
        max_connections=settings.max_connections,
    )
    return functools.partial(BoundedHttpProtocol, limits=limits)


class BoundedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with read deadlines, a head size cap and a connection cap.

    Keep-alive, pipelining and flow control stay uvicorn's own.
    """

    def __init__(self, *args: Any, limits: EdgeLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self.read_timer: Any = None  # asyncio.TimerHandle, at or before the deadline
        self.deadline: float | None = None  # loop time by which the awaited head or body must be in
        self.on_deadline: Any = None
        self.awaiting_head = True  # no complete head since the last complete message
        self.head_bytes = 0
        self.refused = False  # an answer was written outside the app; the connection is closing

    # Deadlines: one timer per connection, for the head or for the body. A request moves the
    # deadline without touching the timer, which looks again when it fires: scheduling and
    # cancelling two timers per request cost the vote path a few percent.
    def _arm(self, seconds: float, on_expiry: Any) -> None:
        self.deadline = self.loop.time() + seconds
        self.on_deadline = on_expiry
        if self.read_timer is None:
            self.read_timer = self.loop.call_at(self.deadline, self._deadline_check)

    def _disarm(self) -> None:
        self.deadline = None

    def _deadline_check(self) -> None:
        self.read_timer = None
        if self.deadline is None or self.refused:
            return
        if self.loop.time() < self.deadline:
            self.read_timer = self.loop.call_at(self.deadline, self._deadline_check)
            return
        self.deadline = None
        self.on_deadline()

    def _stop_timer(self) -> None:
        self.deadline = None
        if self.read_timer is not None:
            self.read_timer.cancel()
            self.read_timer = None

    def _refuse(self, problem: problems.Problem, headers: dict[str, str] | None = None) -> None:
        """Answers outside the app and closes: the parser's remaining callbacks are ignored."""
        self.refused = True
        self._stop_timer()
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app's receive() sees a disconnect, its send() is dropped
            cycle.message_event.set()
            if cycle.response_started:  # an answer is already on its way: no second one inside it
                self.transport.close()
                return
        if not self.transport.is_closing():
            self.transport.write(problem_response(problem, headers))
            self.transport.close()

    def _head_too_slow(self) -> None:
        self._refuse(RequestTimeout(f"The request's headers did not arrive within {self.limits.header_timeout_s:g} s."))

    def _body_too_slow(self) -> None:
        self._refuse(RequestTimeout(f"The request's body did not arrive within {self.limits.body_timeout_s:g} s."))

    # asyncio.Protocol
    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.limits.header_timeout_s, self._head_too_slow)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        if self.awaiting_head:
            self.head_bytes += len(data)
        super().data_received(data)
        # Checked after parsing, so that a chunk that also holds the body is not counted as head.
        # httptools keeps an unfinished header in memory: this bounds it to the cap plus one read.
        if self.awaiting_head and self.head_bytes > self.limits.max_header_bytes and not self.refused:
            self._refuse(HeadersTooLarge(f"The request line and headers exceed {self.limits.max_header_bytes} bytes."))

    # Upgrades are refused in on_headers_complete, with an answer: uvicorn must neither hand the
    # connection to a WebSocket protocol (which logs the client's address) nor warn about it.
    def _should_upgrade_to_ws(self) -> bool:
        return False

    def _unsupported_upgrade_warning(self) -> None:
        pass

    # httptools callbacks
    # on_message_begin, on_url and on_header stay uvicorn's: after a refusal they only fill
    # parser state that on_headers_complete, below, never hands to the app.
    def on_headers_complete(self) -> None:
        if self.refused:
            return
        self.awaiting_head = False
        if self.parser.should_upgrade():
            # With ws="none" uvicorn would serve the request and then log a warning; with a
            # WebSocket library it would hand the connection over and log the client's address.
            self._refuse(UpgradeRefused("Use GET without Upgrade: results stream as Server-Sent Events."))
            return
        if len(self.connections) > self.limits.max_connections:
            self._refuse(
                problems.ServiceUnavailable("This worker has too many open connections; try again shortly."),
                {"retry-after": str(RETRY_AFTER_S)},
            )
            return
        self._arm(self.limits.body_timeout_s, self._body_too_slow)
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self.refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self.refused:
            return
        self._disarm()
        self.awaiting_head = True
        self.head_bytes = 0
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # The next request's head is due from now, unless a pipelined request is already running.
        idle = self.cycle is None or self.cycle.response_complete
        if idle and not self.refused and not self.transport.is_closing():
            self._arm(self.limits.header_timeout_s, self._head_too_slow)


class StreamsPerClient:
    """ASGI middleware: at most `limit` open results streams per client in this worker (429 past it).

    The client is the TCP peer, or the address a trusted reverse proxy put in `client_header`
    (the service listens on loopback only, so behind a proxy every peer is the proxy). Only a
    hash of it under a key made at start is kept, in memory, for as long as its streams are open.
    """

    def __init__(self, app: ASGIApp, limit: int, client_header: str | None) -> None:
        self.app = app
        self.limit = limit
        self.client_header = client_header.lower().encode("latin-1") if client_header else None
        self.open_streams: Counter[bytes] = Counter()
        self._key = secrets.token_bytes(32)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.limit or scope["type"] != "http" or not _is_stream(scope["path"]):
            await self.app(scope, receive, send)
            return
        client = self._client_of(scope)
        if self.open_streams[client] >= self.limit:
            await _send_problem(
                send,
                problems.RateLimited(f"At most {self.limit} results streams per client; poll the results instead."),
                {"retry-after": str(RETRY_AFTER_S)},
            )
            return
        self.open_streams[client] += 1
        try:
            await self.app(scope, receive, send)  # returns when the stream ends or the client leaves
        finally:
            self.open_streams[client] -= 1
            if not self.open_streams[client]:
                del self.open_streams[client]

    def _client_of(self, scope: Scope) -> bytes:
        address = b""
        if self.client_header is not None:
            address = next((value for name, value in scope["headers"] if name == self.client_header), b"")
        if not address and scope.get("client"):
            address = scope["client"][0].encode()
        return hashlib.blake2b(address, key=self._key, digest_size=16).digest()


def _is_stream(path: str) -> bool:
    return path.startswith(STREAM_PATH_PREFIX) and path.endswith(STREAM_PATH_SUFFIX)


async def _send_problem(send: Send, problem: problems.Problem, headers: dict[str, str]) -> None:
    body = msgspec.json.encode(problem.details())
    fields = {"content-type": problems.PROBLEM_MEDIA_TYPE, "content-length": str(len(body)), **headers}
    await send(
        {
            "type": "http.response.start",
            "status": problem.status,
            "headers": [(name.encode(), value.encode()) for name, value in fields.items()],
        }
    )
    await send({"type": "http.response.body", "body": body})
