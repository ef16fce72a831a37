"""The vote endpoint's fast path: a vote skips Litestar's per-request machinery.

Every vote request passes here first (a route middleware on `castVote`). A request whose body
has a known length within the limit is read here and goes through the same acceptance rules
as in the Litestar handler (app/votes/acceptance.py), straight to the vote service; problems
propagate to the app's exception handlers, as they would from the handler. Anything else (a
body of unknown length, or too long) is handed to the Litestar handler, which enforces the
body limit as it reads.

Why: Litestar's request, signature model, dependency and response objects cost more per vote
than decoding and verifying the vote itself (bench/ingest.py measures both).
"""

from __future__ import annotations

from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from app.votes.acceptance import vote_from_request
from app.votes.service import VoteService

_JSON = b"application/json"


class VoteFastPath(ASGIMiddleware):
    def __init__(self, votes: VoteService, max_body_bytes: int) -> None:
        self.votes = votes
        self.max_body_bytes = max_body_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        # Every value of each header, so that a repeated one is refused as the handler refuses it.
        content_types: list[str] = []
        idempotency_headers: list[str] = []
        lengths: list[bytes] = []
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_types.append(value.decode("latin-1"))
            elif name == b"idempotency-key":
                idempotency_headers.append(value.decode("latin-1"))
            elif name == b"content-length":
                lengths.append(value)
        if len(lengths) != 1 or not lengths[0].isdigit() or int(lengths[0]) > self.max_body_bytes:
            await next_app(scope, receive, send)
            return
        body, complete = await _read_body(receive)
        if not complete:
            return  # the client went away before sending its vote: nothing to answer
        vote = vote_from_request(content_types, idempotency_headers, body, scope["path_params"]["poll_id"])
        accepted = await self.votes.submit(vote)
        await send(
            {
                "type": "http.response.start",
                "status": accepted.status,
                "headers": [(b"content-type", _JSON), (b"content-length", str(len(accepted.receipt)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": accepted.receipt})


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"", False
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), True
