"""Baselines on the same stack (Litestar, msgspec, PyNaCl, uvicorn), for ratios measured in one run:

- `GET /noop`: returns a small dict; the ceiling of the stack.
- `POST /verify`: decodes a vote exactly as the service does and verifies its signature; what
  ingest would cost with no database at all. The issue's baseline.
- `POST /verify-lean`: the same, on the lean path the vote endpoint takes (a route middleware
  that answers without Litestar's request and response objects, app/edge/fast_path.py): what that
  path would cost with no database at all.
"""

from __future__ import annotations

import base64
import gc

import msgspec
from litestar import Litestar, get, post
from litestar.middleware import ASGIMiddleware
from litestar.params import JSONBody
from litestar.types import ASGIApp, Receive, Scope, Send
from nacl.signing import VerifyKey

from app.core.protocol import Vote


def _verify(vote: Vote) -> None:
    VerifyKey(_b64url(vote.public_key)).verify(vote.signing_bytes(), _b64url(vote.signature))


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@get("/noop", sync_to_thread=False)
def noop() -> dict[str, str]:
    return {"status": "ok"}


@post("/verify", sync_to_thread=False, status_code=200)
def verify(data: JSONBody[Vote]) -> dict[str, str]:
    _verify(data)
    return {"status": "verified"}


_decode_vote = msgspec.json.Decoder(Vote).decode
_VERIFIED = b'{"status":"verified"}'


class LeanVerify(ASGIMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        vote = _decode_vote(body)
        _verify(vote)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(_VERIFIED)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": _VERIFIED})


@post("/verify-lean", sync_to_thread=False, status_code=200, middleware=[LeanVerify()])
def verify_lean() -> None:
    raise AssertionError("LeanVerify answers every request")


def freeze_startup_objects() -> None:
    # The service does the same after startup (app/factory.py): both sides get the same treatment.
    gc.collect()
    gc.freeze()


def create_app() -> Litestar:
    return Litestar([noop, verify, verify_lean], openapi_config=None, on_startup=[freeze_startup_objects])
