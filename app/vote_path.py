"""The vote endpoint's fast path: a well-formed vote skips Litestar's per-request machinery.

Every vote request passes here first (a route middleware on `castVote`). A request that is
exactly what a device sends (JSON of the right size, a valid Idempotency-Key, a body that
decodes to a Vote naming the same key and poll) goes straight to the vote service. Anything
else is handed, with its body, to the Litestar handler, which gives every error its problem:
error handling lives in one place only. Problems the vote service raises propagate to the
app's exception handlers, as they would from the handler.

Why: Litestar's request, signature model, dependency and response objects cost more per vote
than decoding and verifying the vote itself (bench/ingest.py measures both).
"""

from __future__ import annotations

import msgspec
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.idempotency import idempotency_key_from
from app.problems import Problem
from app.protocol import Vote

_decode_vote = msgspec.json.Decoder(Vote).decode
_JSON = b"application/json"


class VoteFastPath(ASGIMiddleware):
    def __init__(self, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        content_type = idempotency_header = length = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"idempotency-key":
                idempotency_header = value
            elif name == b"content-length":
                length = value
        if (
            content_type is None
            or content_type.split(b";", 1)[0].strip().lower() != _JSON
            or idempotency_header is None
            or length is None
            or not length.isdigit()
            or int(length) > self.max_body_bytes
        ):
            await next_app(scope, receive, send)
            return
        body, complete = await _read_body(receive)
        if not complete:
            return  # the client went away before sending its vote: nothing to answer
        vote = _well_formed_vote(body, idempotency_header, scope["path_params"].get("poll_id"))
        if vote is None:
            await next_app(scope, _replay(body, receive), send)
            return
        accepted = await scope["app"].state.votes.submit(vote)
        await send(
            {
                "type": "http.response.start",
                "status": 201 if accepted.created else 200,
                "headers": [(b"content-type", _JSON), (b"content-length", str(len(accepted.receipt)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": accepted.receipt})


def _well_formed_vote(body: bytes, idempotency_header: bytes, poll_id: str | None) -> Vote | None:
    """The vote, if the request holds nothing for the Litestar handler to reject."""
    try:
        key = idempotency_key_from(idempotency_header.decode("latin-1"))
        vote = _decode_vote(body)
    except (Problem, msgspec.DecodeError):
        return None
    if vote.idempotency_key != key or vote.poll_id != poll_id:
        return None
    return vote


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"", False
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), True


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the body already read, then whatever the client sends next."""
    replayed = False

    async def replaying_receive() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replaying_receive  # type: ignore[return-value]
