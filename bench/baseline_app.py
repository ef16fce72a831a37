"""Baselines on the same stack (Litestar, msgspec, PyNaCl, uvicorn), for ratios measured in one run:

- `GET /noop`: returns a small dict; the ceiling of the stack.
- `POST /verify`: decodes a vote exactly as the service does and verifies its signature; what
  ingest would cost with no database at all.
"""

from __future__ import annotations

from litestar import Litestar, get, post
from litestar.params import JSONBody
from nacl.signing import VerifyKey

from app.protocol import Vote


@get("/noop", sync_to_thread=False)
def noop() -> dict[str, str]:
    return {"status": "ok"}


@post("/verify", sync_to_thread=False, status_code=200)
def verify(data: JSONBody[Vote]) -> dict[str, str]:
    VerifyKey(data.public_key_bytes()).verify(data.signing_bytes(), data.signature_bytes())
    return {"status": "verified"}


def create_app() -> Litestar:
    return Litestar([noop, verify], openapi_config=None)
